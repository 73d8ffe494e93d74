//! The OpenAPI 3.1 `webhooks` section, one entry per event type.

use super::*;

/// `key.quota_threshold` -> `KeyQuotaThreshold`
pub(super) fn event_name(event: &str) -> String {
    event
        .split(['.', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The `webhooks` section: one entry per event type, its payload a schema of
/// its own (`…Event`, added to `schemas`), signed with the Standard Webhooks headers.
pub(super) fn webhooks(events: &Value, schemas: &mut Map<String, Value>) -> Value {
    let mut out = Map::new();
    for kind in EventType::ALL {
        let name = kind.as_str();
        let e = events.get(name).unwrap_or_else(|| panic!("webhooks.json has no {name}"));
        let schema = format!("{}Event", event_name(name));
        let data = schema_ref(&e["data"]);
        schemas.insert(
            schema.clone(),
            json!({
                "type": "object",
                "description": format!("The `{name}` payload."),
                "required": ["id", "type", "createdAt", "data"],
                "properties": {
                    "id": { "type": "string", "pattern": "^evt_", "description": "The event id: also the webhook-id header, the same on every retry. De-duplicate on it." },
                    "type": { "const": name },
                    "createdAt": { "type": "string", "format": "date-time" },
                    "data": data,
                },
            }),
        );
        let payload = json!({ "id": "evt_01KBZ8W6Y5J0M4Q9T2R7HNXC3D", "type": name, "createdAt": "2026-12-04T15:30:00.000Z", "data": e["example"] });
        let mut description = e["description"].as_str().unwrap_or_default().to_string();
        description.push_str(if kind.is_key_event() {
            "\n\nA notice about one key: delivered to that key's own endpoints only, whatever its scopes."
        } else {
            ""
        });
        out.insert(
            name.to_string(),
            json!({ "post": {
                "operationId": format!("on{}", event_name(name)),
                "summary": e["summary"],
                "description": description,
                "tags": ["webhook events"],
                "parameters": [
                    { "$ref": "#/components/parameters/webhook-id" },
                    { "$ref": "#/components/parameters/webhook-timestamp" },
                    { "$ref": "#/components/parameters/webhook-signature" },
                    { "$ref": "#/components/parameters/User-Agent" },
                ],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{schema}") },
                    "example": payload,
                } } },
                "responses": {
                    "2XX": { "description": "Delivered. Answer within 15 seconds; do the work afterwards." },
                    "410": { "description": "Gone: the endpoint is disabled at once (re-enable it with PATCH {\"enabled\": true})." },
                    "default": { "description": "Any other answer, or none: retried on the backoff schedule, then given up (and redeliverable)." },
                },
                "security": [],
            } }),
        );
    }
    Value::Object(out)
}
