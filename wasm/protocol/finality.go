package protocol

// MethodFinality is sp_finality: [event, tokenId] → how final the ticket's last move is
// (relay/README.md). The wallet passes the relay's answer through without decoding it.
const MethodFinality = "sp_finality"
