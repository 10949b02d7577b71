package routing

import (
	"maps"
	"slices"
	"sync"

	"iproc/reporting/store"
)

// Filter keeps the events whose data has every field equal, as text, to
// its value (see FieldText). An empty filter keeps every event.
type Filter map[string]string

// key is where a subscription is indexed: under its topic alone
// (supervisors without a filter), under one field of its filter and that
// field's value (supervisors with one), or under ownerField and the key of
// the agent whose events it may receive (agents, see Viewer.owns).
type key struct{ topic, field, value string }

// ownerField is the pseudo field of agents' subscriptions; it cannot clash
// with a JSON field name a filter uses, since those are matched as given.
const ownerField = "\x00owner"

// entry is one subscription: a subscriber, its viewer and filter, and the
// key it is indexed under (indexed is false for a subscription that can
// never deliver, such as an agent's to campaign group states).
type entry[S comparable] struct {
	sub     S
	viewer  Viewer
	filter  Filter
	at      key
	indexed bool
}

// Index maps topic subscriptions to subscribers of type S (a session
// pointer, say). Its zero value is not usable; make one with New.
//
// Lists are appended to in place and copied on removal, so a list read under
// the read lock may be walked after the lock is released.
type Index[S comparable] struct {
	mu    sync.RWMutex
	lists map[key][]*entry[S]
	// fields counts, per topic, the filtered see-all subscriptions indexed
	// under each field: the fields an event of the topic is looked up by.
	fields map[string]map[string]int
	subs   map[S]map[string]*entry[S] // subscriber → topic → its subscription
	// customer are the customer-data fields: a filter on one matches only
	// for viewers who may see the value whole, so that nobody can guess
	// numbers by filtering.
	customer CustomerFields
}

// New makes an empty index; customer are the customer-data fields.
func New[S comparable](customer CustomerFields) *Index[S] {
	return &Index[S]{lists: map[key][]*entry[S]{}, fields: map[string]map[string]int{}, subs: map[S]map[string]*entry[S]{}, customer: customer}
}

// Subscribe subscribes sub, seen as v, to each of topics with filter f,
// replacing the filter of a subscription it had. It is in force when
// Subscribe returns.
func (ix *Index[S]) Subscribe(sub S, v Viewer, topics []string, f Filter) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, t := range topics {
		ix.setLocked(sub, v, t, f)
	}
}

// Unsubscribe ends sub's subscriptions to topics.
func (ix *Index[S]) Unsubscribe(sub S, topics []string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, t := range topics {
		ix.dropLocked(sub, t)
	}
}

// Replace makes subs, topic by topic, the whole of sub's subscriptions: the
// form used for sessions restored from the log or mirrored from another
// instance.
func (ix *Index[S]) Replace(sub S, v Viewer, subs map[string]Filter) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for t := range ix.subs[sub] {
		if _, keep := subs[t]; !keep {
			ix.dropLocked(sub, t)
		}
	}
	for t, f := range subs {
		ix.setLocked(sub, v, t, f)
	}
}

// Remove ends every subscription of sub.
func (ix *Index[S]) Remove(sub S) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for t := range ix.subs[sub] {
		ix.dropLocked(sub, t)
	}
}

// Subscriptions returns a copy of sub's subscriptions, topic → filter.
func (ix *Index[S]) Subscriptions(sub S) map[string]Filter {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string]Filter, len(ix.subs[sub]))
	for t, e := range ix.subs[sub] {
		out[t] = maps.Clone(e.filter)
	}
	return out
}

// Len returns the number of subscriptions held, and of subscribers.
func (ix *Index[S]) Len() (subscriptions, subscribers int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, l := range ix.lists {
		subscriptions += len(l)
	}
	return subscriptions, len(ix.subs)
}

// Receives reports whether sub is to receive the topic event ev: it
// subscribes to the topic, is entitled to the event and its filter keeps
// it. Replay uses it, event by event.
func (ix *Index[S]) Receives(sub S, ev store.Event) bool {
	ix.mu.RLock()
	e := ix.subs[sub][ev.Name]
	ix.mu.RUnlock()
	if e == nil || !e.indexed {
		return false
	}
	fc := fieldCache{data: ev.Data, fields: ev.Fields}
	return ix.receives(e, ev, &fc)
}

// Route calls deliver for every subscriber that is to receive the topic
// event ev, each once. It costs in proportion to the subscribers it finds,
// plus one lookup per field that filters on ev's topic use.
func (ix *Index[S]) Route(ev store.Event, deliver func(S)) {
	ix.RouteRun([]store.Event{ev}, func(s S, _ int) { deliver(s) })
}

// RouteRun routes run, events of one topic in seq order, calling deliver
// with each receiving subscriber and the index of the event in run. A
// subscriber gets its events in run order; one without a filter gets the
// whole run before the next subscriber, so that its connection can queue the
// run at once.
func (ix *Index[S]) RouteRun(run []store.Event, deliver func(sub S, i int)) {
	if len(run) == 0 {
		return
	}
	topic := run[0].Name
	facts := make([]fieldCache, len(run))
	for i := range run {
		facts[i].data, facts[i].fields = run[i].Data, run[i].Fields
	}
	var buf [4][]*entry[S]
	ix.mu.RLock()
	all := ix.lists[key{topic: topic}]
	keyed := make([][][]*entry[S], len(run))
	for i, ev := range run {
		lists := buf[:0]
		if i > 0 {
			lists = nil
		}
		if own, ok := ownerOf(ev); ok {
			if l := ix.lists[key{topic, ownerField, own}]; len(l) > 0 {
				lists = append(lists, l)
			}
		}
		for field := range ix.fields[topic] {
			if v, ok := facts[i].text(field); ok {
				if l := ix.lists[key{topic, field, v}]; len(l) > 0 {
					lists = append(lists, l)
				}
			}
		}
		keyed[i] = lists
	}
	ix.mu.RUnlock()
	for _, e := range all {
		for i, ev := range run {
			if ix.receives(e, ev, &facts[i]) {
				deliver(e.sub, i)
			}
		}
	}
	for i, ev := range run {
		for _, l := range keyed[i] {
			for _, e := range l {
				if ix.receives(e, ev, &facts[i]) {
					deliver(e.sub, i)
				}
			}
		}
	}
}

// receives applies the rights and e's filter to ev. A filter on a
// customer-data field matches only when e's viewer may see it whole.
func (ix *Index[S]) receives(e *entry[S], ev store.Event, fc *fieldCache) bool {
	if !Entitled(e.viewer, ev) {
		return false
	}
	for field, want := range e.filter {
		if ix.customer.Has(field) && !WholeCustomerData(e.viewer, ev) {
			return false
		}
		if got, ok := fc.text(field); !ok || got != want {
			return false
		}
	}
	return true
}

// setLocked indexes sub's subscription to topic; ix.mu must be held.
func (ix *Index[S]) setLocked(sub S, v Viewer, topic string, f Filter) {
	ix.dropLocked(sub, topic)
	e := &entry[S]{sub: sub, viewer: v, filter: maps.Clone(f)}
	if len(e.filter) == 0 {
		e.filter = nil
	}
	switch {
	case v.SeesAll && len(e.filter) == 0:
		e.at, e.indexed = key{topic: topic}, true
	case v.SeesAll:
		field := slices.Min(slices.Collect(maps.Keys(e.filter)))
		e.at, e.indexed = key{topic, field, e.filter[field]}, true
		if ix.fields[topic] == nil {
			ix.fields[topic] = map[string]int{}
		}
		ix.fields[topic][field]++
	default:
		if own, ok := v.owns(topic); ok {
			e.at, e.indexed = key{topic, ownerField, own}, true
		}
	}
	if e.indexed {
		ix.lists[e.at] = append(ix.lists[e.at], e)
	}
	if ix.subs[sub] == nil {
		ix.subs[sub] = map[string]*entry[S]{}
	}
	ix.subs[sub][topic] = e
}

// dropLocked removes sub's subscription to topic, if any; ix.mu must be
// held.
func (ix *Index[S]) dropLocked(sub S, topic string) {
	e := ix.subs[sub][topic]
	if e == nil {
		return
	}
	delete(ix.subs[sub], topic)
	if len(ix.subs[sub]) == 0 {
		delete(ix.subs, sub)
	}
	if !e.indexed {
		return
	}
	l := make([]*entry[S], 0, len(ix.lists[e.at]))
	for _, x := range ix.lists[e.at] {
		if x != e {
			l = append(l, x)
		}
	}
	if len(l) == 0 {
		delete(ix.lists, e.at)
	} else {
		ix.lists[e.at] = l
	}
	if f := e.at.field; f != "" && f != ownerField {
		if ix.fields[topic][f]--; ix.fields[topic][f] == 0 {
			delete(ix.fields[topic], f)
			if len(ix.fields[topic]) == 0 {
				delete(ix.fields, topic)
			}
		}
	}
}

// fieldCache gives the fields of one event's data: from the fields decoded
// at ingest (store.Event.Fields) when the event carries them, else scanned
// for in the data, each once however many filters ask.
type fieldCache struct {
	data   []byte
	fields map[string]string
	looked []fieldText
}

type fieldText struct {
	name, text string
	ok         bool
}

func (c *fieldCache) text(name string) (string, bool) {
	if c.fields != nil {
		t, ok := c.fields[name]
		return t, ok
	}
	for _, f := range c.looked {
		if f.name == name {
			return f.text, f.ok
		}
	}
	t, ok := FieldText(c.data, name)
	c.looked = append(c.looked, fieldText{name, t, ok})
	return t, ok
}
