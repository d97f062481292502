// Command stagepass is the Stagepass relay.
//
//	stagepass dev    [flags]   the whole platform on an embedded development chain
//	stagepass serve  [flags]   the relay against any EVM JSON-RPC endpoint
//
// Every flag can also be given as an environment variable: STAGEPASS_ and the flag's name in
// upper case with '-' as '_' (for example STAGEPASS_BLOCK_TIME=2s). Flags win.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "stagepass:", err)
		os.Exit(1)
	}
}

const usage = `stagepass: the Stagepass relay.

Usage:
  stagepass dev   [flags]   run the platform on an embedded development chain
  stagepass serve [flags]   run the relay against an EVM JSON-RPC endpoint
  stagepass oracle [flags]  run one independent oracle node
  stagepass anchor [flags]  anchor each new checkpoint in a proof-of-work chain (btcd)
  stagepass checkpoint verify N [flags]  show checkpoint N, its stake signatures and its anchor
  stagepass validator [flags]  run one sidechain validator (checkpoints, deposits)
  stagepass rewards [flags]  a validator's stake and checkpoint rewards; --claim claims them

Run 'stagepass COMMAND --help' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stderr)
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "oracle":
		return runOracle(ctx, args[1:], stderr)
	case "anchor":
		return runAnchor(ctx, args[1:], stdout, stderr)
	case "checkpoint":
		return runCheckpoint(ctx, args[1:], stdout, stderr)
	case "validator":
		return runValidator(ctx, args[1:], stderr)
	case "rewards":
		return runRewards(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// newFlags makes a command's flag set; parse applies environment defaults before the
// command line.
func newFlags(name, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stagepass "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: stagepass %s [flags]\n\n%s\n\nFlags (or STAGEPASS_<NAME> environment variables):\n", name, about)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		env := "STAGEPASS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && bad == nil {
			if err := f.Value.Set(v); err != nil {
				bad = fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	})
	if bad != nil {
		return bad
	}
	return fs.Parse(args)
}

// sharedFlags are the flags of both dev and serve.
type sharedFlags struct {
	addr     string
	data     string
	origins  string
	logLevel string
}

func (c *sharedFlags) register(fs *flag.FlagSet, defaultData string) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to serve the site, /ws, /rpc, /healthz and /metrics on")
	fs.StringVar(&c.data, "data", defaultData, "folder for the relay's own state: the forwarding outbox, card payments and payouts, the validators' collected signatures, the bridge's withdrawals and deposits read, the sandbox processor and anchors (outbox.db, payments.db, payouts.db, validators.db, bridge.db, sandbox.db, anchor.db)")
	fs.StringVar(&c.origins, "origins", "", "comma-separated origins allowed to open websockets (default: the relay's own)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (c *sharedFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
}

func (c *sharedFlags) originList() []string {
	var out []string
	for _, o := range strings.Split(c.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// shutdownGrace is how long a stopping relay waits for connections and the outbox to drain.
const shutdownGrace = 10 * time.Second
