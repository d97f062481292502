-- The relay's chain index at the edge (edge/index.go): written by the follower, one
-- transaction (D1 batch) per pass; read by sp_events, sp_event, sp_ticketsByOwner,
-- sp_listings, sp_eventTickets and the tickets/event topics' backlog.

-- Where the follower goes on from: the next block and the hashes of the blocks before it
-- (JSON {"number":"0xhash"}, the last 32: reorganisation detection).
CREATE TABLE follow (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL, hashes TEXT NOT NULL);
-- A pass that did not start from the stored cursor inserts a row here, which fails its
-- transaction ("CHECK constraint failed: another_pass_ran").
CREATE TABLE follow_check (stale INTEGER CONSTRAINT another_pass_ran CHECK (stale = 0));

-- Every activity (protocol.Activity as JSON) in the chain's log order, with the event's
-- configuration for eventCreated (replayed after a reorganisation) and its fan-out keys.
CREATE TABLE activities (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, sub INTEGER NOT NULL,
  data TEXT NOT NULL, info TEXT, keys TEXT NOT NULL,
  PRIMARY KEY (block, log_index, sub)
);
-- The activities of each fan-out key ("owner:0x…", "event:0x…"): a subscriber's backlog.
CREATE TABLE activity_keys (
  key TEXT NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL, sub INTEGER NOT NULL,
  PRIMARY KEY (key, block, log_index, sub)
);

-- The current state: events (protocol.EventInfo, in creation order) and tickets
-- (protocol.TicketInfo; addresses lower-case).
CREATE TABLE events (address TEXT PRIMARY KEY, block INTEGER NOT NULL, log_index INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE tickets (
  event TEXT NOT NULL, token_id TEXT NOT NULL, owner TEXT NOT NULL, listed INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (event, token_id)
);
CREATE INDEX tickets_owner ON tickets (owner);
