-- The card processor's webhooks the worker verified (edge/webhook.go), each once by its
-- event id: a redelivery finds its row and changes nothing.
CREATE TABLE webhook_events (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, payment_intent TEXT NOT NULL, amount INTEGER NOT NULL,
  currency TEXT NOT NULL, created INTEGER NOT NULL, received INTEGER NOT NULL
);
CREATE INDEX webhook_events_payment ON webhook_events (payment_intent);
