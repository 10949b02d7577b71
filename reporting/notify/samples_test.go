package notify

// Sample payloads shaped on the vendor seeds.

// sampleCGS is a CampaignGroupState notification with every seed 000 field
// and a periodic statistic (extra fields are kept).
const sampleCGS = `{
  "GSW_USER_EVENT": "CampaignGroupState",
  "GSW_DATE_TIME": "1527519972.123",
  "GSW_TENANT_NAME": "Environment",
  "GSW_TENANT_CCID": "Unknown",
  "GSW_CAMPAIGN_GROUP_NAME": "Spring Sale@Outbound Agents",
  "GSW_CAMPAIGN_GROUP_GUID": "7D1D4B6E-5C2B-4B8B-9E0C-2A3F4E5D6C7B",
  "GSW_GROUP_NAME": "Outbound Agents",
  "GSW_CAMPAIGN_NAME": "Spring Sale",
  "GSW_CAMPAIGN_TEMPLATE_NAME": "Sales Template",
  "GSW_QUEUE_NAME": "VTD_7000",
  "GSW_DIAL_MODE": 6,
  "GSW_CAMPAIGN_GROUP_STATE": 4,
  "GSW_CAMPAIGN_GROUP_ACTION": 2010,
  "GSW_CAMPAIGN_GROUP_ACTOR": 1,
  "STAT_BusyFactor": 0.8500000000000000001
}`

// sampleCP is a ContactProcessed notification (seed 001) for an answered
// call: every mandatory field, the FTC timestamps and a user-defined field.
const sampleCP = `{
  "GSW_MESSAGE": "ContactProcessed",
  "GSW_MESSAGE_GUID": "0B5A8A3E-77D4-4C5B-A1E3-3F0C7B2E9D11",
  "GSW_TIMESTAMP": "1700000300.250",
  "GSW_CALL_ATTEMPT_GUID": "A7C1E2D3-0000-4A4A-8B8B-123456789ABC",
  "GSW_PHONE": "+15551234567",
  "GSW_PHONE_TYPE": 4,
  "GSW_CHAIN_ID": "17",
  "GSW_CHAIN_N": 0,
  "GSW_RECORD_HANDLE": 1234,
  "GSW_REASON": 23,
  "GSW_CUSTOMER_ID": "CUST-42",
  "GSW_CALL_RESULT": 33,
  "GSW_DISPOSITION_CODE": "SALE",
  "GSW_CAMPAIGN_NAME": "Spring Sale",
  "GSW_CAMPAIGN_TEMPLATE_NAME": "Sales Template",
  "GSW_CONTACT_MEDIA_TYPE": "voice",
  "GSW_CALLING_LIST": "CL_Spring",
  "GSW_CAMPAIGN_GROUP_NAME": "Spring Sale@Outbound Agents",
  "GSW_CAMPAIGN_GROUP_GUID": "7D1D4B6E-5C2B-4B8B-9E0C-2A3F4E5D6C7B",
  "GSW_GROUP_NAME": "Outbound Agents",
  "GSW_QUEUE_NAME": "VTD_7000",
  "GSW_DIAL_MODE": 6,
  "GSW_AGENT_ID": "1001",
  "GSW_RECORD_TYPE": 2,
  "GSW_RECORD_STATUS": 3,
  "GSW_OPTIMIZE_BY": 1,
  "GSW_OPTIMIZE_GOAL": 80,
  "GSW_START_PROCESSING": "1700000000.000",
  "GSW_CALL_TIME": "1700000000.100",
  "GSW_DIALING": "1700000000.200",
  "GSW_RINGING": "1700000002.200",
  "GSW_ANSWERED": "1700000010.200",
  "GSW_CPD_COMPLETED": "1700000011.700",
  "GSW_QUEUED": "1700000011.800",
  "GSW_AGENT_RINGING": "1700000013.800",
  "GSW_AGENT_ANSWERED": "1700000016.000",
  "GSW_AGENT_RELEASED": "1700000196.000",
  "GSW_ACW_COMPLETED": "1700000226.000",
  "GSW_COMPLETE_PROCESSING": "1700000300.000",
  "Other1": "callback tomorrow",
  "Other2": {"nested": [1, 2.50, 1e400]}
}`

// sampleCallback is the seed 003 _cbe_on_dial_done event with its commas
// restored.
const sampleCallback = `{
  "event_id": "_cbe_on_dial_done",
  "timestamp": "1467576012",
  "_service_id": "445-20e740d3-8458-43d6-834d-3713c3385bac",
  "_service_name": "samples_dev",
  "_callback_state": "QUEUED",
  "_customer_number": "5115",
  "c_dialed_number": "5115",
  "c_call_result": 0,
  "c_call_num_attempt": 1,
  "name1": "value1",
  "name2": "value2"
}`

// sampleTargetFound is the seed 003 _cbe_on_target_found event (commas
// restored) with the agent fields of the reference table.
const sampleTargetFound = `{
  "event_id": "_cbe_on_target_found",
  "timestamp": "1467576016",
  "_service_id": "445-20e740d3-8458-43d6-834d-3713c3385bac",
  "_service_name": "samples_dev",
  "_callback_state": "QUEUED",
  "_urs_virtual_queue": "SIP_VQ_SIP_Switch",
  "c_agent_id": "1001",
  "c_agent_extension": "7001",
  "c_target": {"agent": "KSippola", "dn": "7001", "id": "Customer_Service", "place": "SIP Server Place1",
    "resource": "7001", "return": "target", "stat_value": "0", "switch": "SIP_Switch", "type": "GA",
    "vg": "SIP VQ SIP Switch"},
  "name1": "value1",
  "name2": "value2"
}`

// sampleWrapper is a GMS {deviceId, message} notification.
const sampleWrapper = `{"deviceId": "desk-17", "message": {
  "event_id": "_cbe_on_service_exit",
  "timestamp": "1467576291",
  "_service_id": "445-20e740d3-8458-43d6-834d-3713c3385bac",
  "_service_name": "samples_dev",
  "_callback_state": "QUEUED",
  "c_termination_type": "COMPLETED.AGENT_CONNECTED",
  "name1": "value1",
  "name2": "value2"
}}`

// seedCallbackVerbatim is the start of the seed 003 sample exactly as
// printed: its commas are missing.
const seedCallbackVerbatim = `{
           "event_id": "_cbe_on_service_create",
          "timestamp": "1467575991"
          "_service_id": "445-20e740d3-8458-43d6-834d-3713c3385bac",
          "_service_name": "samples_dev",
          "_callback_state": "QUEUED",
"_customer_number": "5115",
          "_urs_virtual_queue": "SIP_VQ_SIP_Switch",
          "name1": "value1",
"name2": "value2"
}`

// sampleCDR is a dialer CDR with the seed 004 fields.
const sampleCDR = `{"ext": "5001", "internal_call_ref": "d-20240301-000123", "custom_call_ref": "crm-778",
  "disposition": "ANSWERED", "SIP_termination_code": 200, "campaign_ref": "spring",
  "client_number": "+15551234567", "dial_number": "+15557654321"}`

// sampleCDRQueueHangup is a CDR whose callee hung up in the queue: the seed
// documents ext as null then.
const sampleCDRQueueHangup = `{"ext": null, "internal_call_ref": "d-20240301-000124", "custom_call_ref": "crm-779",
  "disposition": "ABANDONED", "SIP_termination_code": "487", "campaign_ref": "spring",
  "client_number": "+15551234568", "dial_number": "+15557654321"}`
