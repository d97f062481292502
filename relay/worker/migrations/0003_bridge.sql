-- The bridge's withdrawals at the edge (edge/bridge.go): what relay/exits' tracker keeps in
-- memory on the native relay, written by the bridge's follower, one transaction (D1 batch)
-- per pass; read by sp_withdrawals, sp_withdrawalProof and sp_deposits.

-- Where the follower goes on from: the next sidechain block (ChildGateway's
-- WithdrawalQueued logs) and main-chain block (RootGateway's Exited and Deposited logs), how many
-- withdrawals and checkpoints it has read, and the hashes of the last blocks each pass read
-- up to, per chain (JSON {"number":"0xhash"}, the last 32: reorganisation detection). A pass
-- that did not start from here fails its transaction (follow_check, 0001_index.sql).
CREATE TABLE bridge_follow (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  side_next INTEGER NOT NULL, main_next INTEGER NOT NULL,
  withdrawals INTEGER NOT NULL, checkpoints INTEGER NOT NULL,
  side_hashes TEXT NOT NULL, main_hashes TEXT NOT NULL
);

-- ChildGateway's withdrawal tree, one row a leaf (its fields as logged, the leaf recomputed
-- in Go and checked against the logged one; numbers in decimal, addresses lower-case).
CREATE TABLE bridge_withdrawals (
  idx INTEGER PRIMARY KEY, kind INTEGER NOT NULL, recipient TEXT NOT NULL, asset TEXT NOT NULL,
  value TEXT NOT NULL, data TEXT NOT NULL, leaf TEXT NOT NULL, tx TEXT NOT NULL, block INTEGER NOT NULL
);
CREATE INDEX bridge_withdrawals_recipient ON bridge_withdrawals (recipient);
CREATE INDEX bridge_withdrawals_block ON bridge_withdrawals (block);

-- CheckpointManager's checkpoints as checked: its first `leaves` withdrawals make a tree
-- whose root is the checkpoint's (ok = 1), or not (ok = 0: no proofs against it); main_head
-- is the main chain's head when it was read (it is in that block or an earlier one).
CREATE TABLE bridge_checkpoints (
  number INTEGER PRIMARY KEY, end_block INTEGER NOT NULL, leaves INTEGER NOT NULL, root TEXT NOT NULL, ok INTEGER NOT NULL,
  main_head INTEGER NOT NULL
);

-- RootGateway's Exited logs: the main-chain transaction (in main-chain block `block`) that
-- paid withdrawal idx.
CREATE TABLE bridge_exits (idx INTEGER PRIMARY KEY, checkpoint INTEGER NOT NULL, tx TEXT NOT NULL, block INTEGER NOT NULL);

-- RootGateway's Deposited logs (main-chain block `block`): sp_deposits. credited = 1 once
-- ChildGateway was seen to mint it (read on the sidechain until then).
CREATE TABLE bridge_deposits (
  id TEXT PRIMARY KEY, recipient TEXT NOT NULL, sender TEXT NOT NULL, amount TEXT NOT NULL,
  tx TEXT NOT NULL, block INTEGER NOT NULL, credited INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bridge_deposits_recipient ON bridge_deposits (recipient, block);
