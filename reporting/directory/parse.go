package directory

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// ValidationError lists every problem Parse found in a directory.
type ValidationError struct {
	// Problems are one-line descriptions in file order, each naming its
	// item, e.g. `agents[3] (id "1004"): type "Boss" is not Agent,
	// Supervisor or TeamLead`. They never contain a password hash.
	Problems []string
}

var _ error = (*ValidationError)(nil)

// maxShownProblems bounds how many problems Error spells out.
const maxShownProblems = 5

// Error joins the first few problems into one line.
func (e *ValidationError) Error() string {
	if len(e.Problems) <= maxShownProblems {
		return strings.Join(e.Problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more problems", strings.Join(e.Problems[:maxShownProblems], "; "), len(e.Problems)-maxShownProblems)
}

// Parse decodes and validates a directory file (SPEC §7.1). It refuses
// malformed JSON, unknown fields, missing id, name, type or passwordHash, an
// unknown type, duplicate agent ids, team ids or extensions, team members or
// supervisors that are not agents, a member listed twice in one list, and
// password hashes that are not complete bcrypt hashes. The error is a
// *ValidationError naming every bad item.
//
// An empty extension counts as none. A team may be empty, and an agent may be
// both a member and a supervisor of one team. At least one agent is required,
// so that a truncated file cannot lock everybody out.
func Parse(data []byte) (*Directory, error) {
	var p parser
	d := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &ValidationError{Problems: p.problems}
	}
	d.raw = bytes.Clone(data)
	return d, nil
}

// parser collects problems while it decodes.
type parser struct {
	problems []string
}

func (p *parser) add(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// parse returns the directory, or nil when it recorded problems.
func (p *parser) parse(data []byte) *Directory {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			p.add("invalid JSON at line %d, column %d: %s", line, col, se.Error())
		} else {
			p.add(`the directory must be a JSON object {"agents": [...], "teams": [...]}`)
		}
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "agents" && k != "teams" && k != "reasonCodes" {
			p.add(`unknown top-level field %s (a directory has only "agents", "teams" and "reasonCodes")`, quote(k))
		}
	}

	d := &Directory{
		agents:  map[string]Agent{},
		teams:   map[string]Team{},
		teamsOf: map[string][]Team{},
	}
	costs := p.agents(top, d)
	p.teams(top, d)
	p.reasonCodes(top, d)
	if len(p.problems) > 0 {
		return nil
	}

	d.agentList = slices.SortedFunc(maps.Values(d.agents), func(a, b Agent) int { return cmp.Compare(a.ID, b.ID) })
	d.teamList = slices.SortedFunc(maps.Values(d.teams), func(a, b Team) int { return cmp.Compare(a.ID, b.ID) })
	for _, t := range d.teamList {
		for _, id := range t.MemberIDs() {
			d.teamsOf[id] = append(d.teamsOf[id], t)
		}
	}
	for id, ts := range d.teamsOf {
		d.teamsOf[id] = slices.Clip(ts)
	}
	d.dummyHash = dummyHashAt(usualCost(costs))
	return d
}

// agents decodes and checks top["agents"] into d, and counts the bcrypt
// costs of the hashes.
func (p *parser) agents(top map[string]json.RawMessage, d *Directory) (costs map[int]int) {
	costs = map[int]int{}
	agentAt := map[string]int{} // id → index of first occurrence
	extAt := map[string]int{}   // extension → index of first occurrence

	rawAgents, present := p.array(top, "agents", "")
	switch {
	case !present:
		p.add(`"agents" is required`)
	case len(rawAgents) == 0:
		p.add(`"agents" is empty: a directory needs at least one agent`)
	}
	for i, raw := range rawAgents {
		label := fmt.Sprintf("agents[%d]", i)
		f, ok := p.object(raw, label)
		if !ok {
			continue
		}
		id, idTyped := p.str(f, "id", label)
		if id != "" {
			label = fmt.Sprintf("agents[%d] (id %s)", i, quote(id))
		}
		p.unknown(f, label, "id", "name", "type", "extension", "passwordHash", "customerData")
		name, nameTyped := p.str(f, "name", label)
		typ, typeTyped := p.str(f, "type", label)
		ext, _ := p.str(f, "extension", label)
		hash, hashTyped := p.str(f, "passwordHash", label)
		customer, _ := p.str(f, "customerData", label)
		a := Agent{ID: id, Name: name, Type: AgentType(typ), Extension: ext, PasswordHash: hash, CustomerData: customer}
		if customer != "" && customer != CustomerDataFull && customer != CustomerDataMasked {
			p.add(`%s: customerData %s is not "full" or "masked"`, label, quote(customer))
		}
		idOK := idTyped && p.checkID(label, a.ID)
		if nameTyped && strings.TrimSpace(a.Name) == "" {
			p.add(`%s: "name" is required`, label)
		}
		switch {
		case !typeTyped: // already reported
		case a.Type == "":
			p.add(`%s: "type" is required (Agent, Supervisor or TeamLead)`, label)
		case !a.Type.Valid():
			p.add(`%s: type %s is not Agent, Supervisor or TeamLead`, label, quote(string(a.Type)))
		}
		if a.Extension != "" {
			if strings.TrimSpace(a.Extension) != a.Extension {
				p.add(`%s: extension %s has leading or trailing spaces`, label, quote(a.Extension))
			} else if j, dup := extAt[a.Extension]; dup {
				p.add(`%s: extension %s is already agents[%d]'s`, label, quote(a.Extension), j)
			} else {
				extAt[a.Extension] = i
			}
		}
		switch cost, valid := checkHash(a.PasswordHash); {
		case !hashTyped: // already reported
		case a.PasswordHash == "":
			p.add(`%s: "passwordHash" is required (make one with iproc hash-password)`, label)
		case !valid:
			p.add(`%s: "passwordHash" is not a valid bcrypt hash`, label) // never echo it
		default:
			costs[cost]++
		}
		if !idOK {
			continue
		}
		if j, dup := agentAt[a.ID]; dup {
			p.add(`%s: duplicate agent id (agents[%d] has it too)`, label, j)
			continue
		}
		agentAt[a.ID] = i
		d.agents[a.ID] = a
	}
	return costs
}

// Limits of the reason-code label table.
const (
	maxReasonCodes     = 1000
	maxReasonLabelSize = 64
)

// reasonCodes decodes the optional top["reasonCodes"], an object of reason
// code → label, into d.
func (p *parser) reasonCodes(top map[string]json.RawMessage, d *Directory) {
	raw, present := top["reasonCodes"]
	if !present || isNull(raw) {
		return
	}
	f, ok := p.object(raw, `"reasonCodes"`)
	if !ok {
		return
	}
	if len(f) > maxReasonCodes {
		p.add(`"reasonCodes" has %d codes, more than %d`, len(f), maxReasonCodes)
		return
	}
	d.reasons = make(map[string]string, len(f))
	for _, code := range slices.Sorted(maps.Keys(f)) {
		label, ok := p.str(f, code, `"reasonCodes"`)
		switch {
		case !ok: // already reported
		case code == "" || strings.TrimSpace(label) == "":
			p.add(`"reasonCodes": code %s needs a code and a label`, quote(code))
		case len(label) > maxReasonLabelSize:
			p.add(`"reasonCodes": the label of code %s is longer than %d bytes`, quote(code), maxReasonLabelSize)
		default:
			d.reasons[code] = label
		}
	}
}

// teams decodes and checks top["teams"] into d; d.agents must be complete.
func (p *parser) teams(top map[string]json.RawMessage, d *Directory) {
	teamAt := map[string]int{}
	rawTeams, _ := p.array(top, "teams", "")
	for i, raw := range rawTeams {
		label := fmt.Sprintf("teams[%d]", i)
		f, ok := p.object(raw, label)
		if !ok {
			continue
		}
		id, idTyped := p.str(f, "id", label)
		if id != "" {
			label = fmt.Sprintf("teams[%d] (id %s)", i, quote(id))
		}
		p.unknown(f, label, "id", "name", "members", "supervisors")
		name, nameTyped := p.str(f, "name", label)
		t := Team{
			ID:          id,
			Name:        name,
			Members:     p.members(f, "members", label, d.agents),
			Supervisors: p.members(f, "supervisors", label, d.agents),
		}
		idOK := idTyped && p.checkID(label, t.ID)
		if nameTyped && strings.TrimSpace(t.Name) == "" {
			p.add(`%s: "name" is required`, label)
		}
		if !idOK {
			continue
		}
		if j, dup := teamAt[t.ID]; dup {
			p.add(`%s: duplicate team id (teams[%d] has it too)`, label, j)
			continue
		}
		teamAt[t.ID] = i
		d.teams[t.ID] = t
	}
}

// checkID reports whether id is usable as an agent or team id.
func (p *parser) checkID(label, id string) bool {
	switch {
	case id == "":
		p.add(`%s: "id" is required`, label)
		return false
	case strings.TrimSpace(id) != id:
		p.add(`%s: id has leading or trailing spaces`, label)
		return false
	}
	return true
}

// array decodes fields[key] as a JSON array; present is false when it is
// absent or null.
func (p *parser) array(fields map[string]json.RawMessage, key, label string) (items []json.RawMessage, present bool) {
	raw, ok := fields[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		p.add(`%s%q must be an array`, prefix(label), key)
		return nil, true
	}
	return items, true
}

// object decodes raw as a JSON object.
func (p *parser) object(raw json.RawMessage, label string) (map[string]json.RawMessage, bool) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		p.add(`%s: must be a JSON object`, label)
		return nil, false
	}
	return f, true
}

// str decodes fields[key] as a string; absent and null read as "". ok is
// false, and the problem recorded, when the value is not a string.
func (p *parser) str(fields map[string]json.RawMessage, key, label string) (s string, ok bool) {
	raw, present := fields[key]
	if !present || isNull(raw) {
		return "", true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		p.notString(label, key, raw)
		return "", false
	}
	return s, true
}

func (p *parser) notString(label, what string, raw json.RawMessage) {
	var n json.Number
	if key := quote(what); json.Unmarshal(raw, &n) == nil {
		p.add(`%s: %s must be a string: write it in quotes, "%s"`, label, key, shorten(n.String()))
	} else {
		p.add(`%s: %s must be a string`, label, key)
	}
}

// unknown reports every field of f not in known, sorted.
func (p *parser) unknown(f map[string]json.RawMessage, label string, known ...string) {
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !slices.Contains(known, k) {
			p.add(`%s: unknown field %s (known: %s)`, label, quote(k), strings.Join(known, ", "))
		}
	}
}

// members decodes fields[key], a list of agent ids, checking that each is an
// agent of agents and is listed once. It never returns nil, and the result
// is clipped so that appending to it copies.
func (p *parser) members(fields map[string]json.RawMessage, key, label string, agents map[string]Agent) []string {
	raws, _ := p.array(fields, key, label)
	ids := make([]string, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	for j, raw := range raws {
		item := fmt.Sprintf("%s[%d]", key, j)
		var id string
		if err := json.Unmarshal(raw, &id); err != nil || isNull(raw) {
			p.notString(label, item, raw)
			continue
		}
		switch _, known := agents[id]; {
		case id == "":
			p.add(`%s: %s is empty`, label, item)
		case !known:
			p.add(`%s: %s %s is not an agent id`, label, item, quote(id))
		case seen[id]:
			p.add(`%s: %s %s is listed twice`, label, item, quote(id))
		default:
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return slices.Clip(ids)
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func prefix(label string) string {
	if label == "" {
		return ""
	}
	return label + ": "
}

// maxQuoted bounds how much of a user-supplied string an error repeats.
const maxQuoted = 40

// shorten cuts s to maxQuoted bytes on a rune boundary, marking the cut.
func shorten(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// quote shortens and quotes a user-supplied string for an error message.
func quote(s string) string { return fmt.Sprintf("%q", shorten(s)) }

// position converts a json.SyntaxError offset (bytes read when the error
// was found) into a 1-based line and column of the offending byte.
func position(data []byte, offset int64) (line, col int) {
	i := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:i]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = i - bytes.LastIndexByte(before, '\n')
	return line, col
}
