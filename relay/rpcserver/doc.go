// Package rpcserver serves JSON-RPC 2.0 over WebSocket (WebSocketHandler, mounted at /ws)
// and HTTP POST (HTTPHandler, at /rpc), with subscriptions in the style of eth_subscribe
// that resume from a cursor. It is transport only: the relay plugs in its methods
// (Register), its subscription topics (RegisterTopic) and what happens on chain (Publish).
//
// # Protocol
//
// Requests, responses, notifications and batches are plain JSON-RPC 2.0, one message per
// websocket frame. Subscriptions use the method names of package protocol:
//
//	→ {"jsonrpc":"2.0","id":1,"method":"sp_subscribe","params":["tickets",{"owner":"0x…","from":{"block":9,"logIndex":2}}]}
//	← {"jsonrpc":"2.0","id":1,"result":"0x1"}
//	← {"jsonrpc":"2.0","method":"sp_subscription","params":{"subscription":"0x1","result":{…}}}
//	→ {"jsonrpc":"2.0","id":2,"method":"sp_unsubscribe","params":["0x1"]}
//	← {"jsonrpc":"2.0","id":2,"result":true}
//
// The subscribe reply always comes before the subscription's first push, and nothing is
// pushed after the unsubscribe reply.
//
// # Resume
//
// A topic's TopicFunc returns a Feed: the fan-out key and, when the client asked to resume,
// a Backlog of what it missed. The subscription is registered first, holding back live
// messages; then the backlog is read and sent; then the held messages follow, minus the
// copies of messages the backlog already had (same cursor, same data). So a message
// published while the client subscribes is delivered once, in order, whichever side of the
// backlog read it falls on. This needs two things from the publisher: each key published
// in cursor order from one goroutine, and a message visible to Backlog by the time it is
// published. A reorg retraction, which reuses a cursor with different data, is delivered.
//
// # Limits
//
// Every limit is in Config: frame and body size (an oversized frame closes the connection
// with 1009, an oversized body gets HTTP 413), batch size, a token bucket per connection
// (per IP on /rpc) whose excess gets CodeLimitExceeded and whose persistent excess closes
// the connection (1008), subscriptions per connection, the per-connection send queue (a
// client that lets it fill is disconnected; the others never wait for it), the Origin
// allowlist (HTTP 403), and ping/pong and write deadlines. At most 16 requests of one
// connection run at once.
//
// # Concurrency
//
// Each connection has one reader goroutine (parses, rate-limits, starts requests) and one
// writer goroutine (the only one that writes to its socket), as in gorilla/websocket's chat
// example. One hub goroutine owns the subscriptions and only appends to send queues, which
// never block, so no lock is held and no one waits while a socket is written.
package rpcserver
