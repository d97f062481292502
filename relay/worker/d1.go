//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall/js"

	"github.com/stagepass/stagepass/relay/worker/edge"
)

// d1 is edge.DB over a D1 binding's JavaScript API: prepare(sql).bind(…args).all(), and
// batch([…]) for a transaction. (syumai/workers' d1 package is a database/sql driver
// without transactions; the index writes each pass in one batch.)
type d1 struct {
	db js.Value
}

func (d d1) prepare(st edge.Stmt) js.Value {
	stmt := d.db.Call("prepare", st.SQL)
	if len(st.Args) == 0 {
		return stmt
	}
	args := make([]any, len(st.Args))
	for i, a := range st.Args {
		switch v := a.(type) {
		case uint:
			args[i] = float64(v)
		case uint64:
			args[i] = float64(v) // block numbers and log indexes: far below 2^53
		default:
			args[i] = v
		}
	}
	return stmt.Call("bind", args...)
}

func (d d1) Query(ctx context.Context, into any, sql string, args ...any) error {
	res, err := await(d.prepare(edge.Stmt{SQL: sql, Args: args}).Call("all"))
	if err != nil {
		return fmt.Errorf("d1: %w", err)
	}
	rows := js.Global().Get("JSON").Call("stringify", res.Get("results")).String()
	return json.Unmarshal([]byte(rows), into)
}

func (d d1) Batch(ctx context.Context, stmts []edge.Stmt) error {
	arr := js.Global().Get("Array").New(len(stmts))
	for i, st := range stmts {
		arr.SetIndex(i, d.prepare(st))
	}
	if _, err := await(d.db.Call("batch", arr)); err != nil {
		return fmt.Errorf("d1 batch: %w", err)
	}
	return nil
}
