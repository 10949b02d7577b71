package journey

import (
	"strings"

	"iproc/reporting/notify"
	"iproc/reporting/store"
)

var _ store.Prefetcher = Projector{}

// Prefetch implements store.Prefetcher: the keys Project will read first
// for ev (each call id's index entry and the journey it would start), so
// that a shared store reads a batch's keys at once.
func (Projector) Prefetch(ev store.Event) []store.BucketKey {
	var ids []string
	switch ev.Name {
	case notify.TopicCampaignGroupState, notify.TopicContactProcessed, notify.TopicCallback, notify.TopicCDR:
	default:
		return nil
	}
	m := fieldsOf(ev)
	if m == nil {
		return nil
	}
	switch ev.Name {
	case notify.TopicCampaignGroupState:
		if guid := text(m, "GSW_CAMPAIGN_GROUP_GUID"); guid != "" {
			return []store.BucketKey{{Bucket: bucketCampaign, Key: strings.ToLower(guid)}}
		}
		return nil
	case notify.TopicContactProcessed:
		ids = []string{text(m, "GSW_CALL_ATTEMPT_GUID")}
	case notify.TopicCallback:
		ids = []string{text(m, "_service_id")}
	case notify.TopicCDR:
		ids = []string{text(m, "internal_call_ref"), text(m, "custom_call_ref")}
	}
	var keys []store.BucketKey
	for _, id := range ids {
		if id != "" && len(id) <= maxIDLen {
			keys = append(keys, store.BucketKey{Bucket: bucketCallID, Key: strings.ToLower(id)}, store.BucketKey{Bucket: bucketJourney, Key: id})
		}
	}
	return keys
}
