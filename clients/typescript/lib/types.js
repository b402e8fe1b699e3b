/**
 * Request and response types of the ModelHub HTTP API, per task. A test checks them against the
 * hub's /openapi.json (field names, optionality, value types), so they cannot drift silently.
 */
export {};
