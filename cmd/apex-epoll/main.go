// Command apex-epoll is a Linux-tuned HTTP/1.1 reverse proxy on a raw epoll
// event loop. Run without flags, it serves its built-in default
// configuration on 127.0.0.1:8080.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apex-epoll/apex/admin"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apex-epoll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of the TOML configuration file; empty runs the built-in default (a fixed page on 127.0.0.1:8080)")
	check := fs.Bool("check", false, "validate the configuration, print the result and exit (0 valid, 1 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "", "override the configured log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: apex-epoll [flags]\n\nApex is an HTTP/1.1 reverse proxy on a raw epoll event loop.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "apex-epoll %s\n", version)
		return 0
	}
	var cfg *config.Config
	var err error
	if *cfgPath == "" {
		cfg = config.Default()
	} else if cfg, err = config.Load(*cfgPath); err != nil {
		fmt.Fprintf(stderr, "apex-epoll: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", cfg.Source)
		return 0
	}
	level := cfg.Log.Level
	if *logLevel != "" {
		level = *logLevel
	}
	var lv slog.LevelVar // a reload may change it
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(stderr, "apex-epoll: bad log level %q\n", level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &lv}))
	raiseFileLimit(log)

	srv, err := proxy.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// Catch signals before serving, so a stop request that follows the
	// first answered request is never missed.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sig)
	srv.Start()
	if cfg.Admin.Listen != "" {
		adm, err := admin.Start(cfg.Admin.Listen, srv, log)
		if err != nil {
			log.Error("cannot start the admin endpoint", "listen", cfg.Admin.Listen, "err", err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			return 1
		}
		defer adm.Close(context.Background())
	}

	var s os.Signal
	for s = range sig {
		if s == syscall.SIGUSR1 {
			// logrotate moved the file away: write to a fresh one.
			if err := srv.ReopenAccessLog(); err != nil {
				log.Error("access log reopen failed; still writing to the old file", "err", err)
			} else {
				log.Info("access log reopened")
			}
			continue
		}
		if s != syscall.SIGHUP {
			break
		}
		if *cfgPath == "" {
			log.Warn("SIGHUP ignored: running the built-in default configuration")
			continue
		}
		reload(srv, *cfgPath, *logLevel, &lv, log)
	}
	grace := srv.Config().Server.ShutdownGrace.D()
	log.Info("shutting down", "signal", s.String(), "grace", grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

// reload re-reads path and switches srv to it. A file that does not load,
// or a change the running proxy cannot take, is logged with its file, line
// and key, counted, and leaves the old configuration serving.
func reload(srv *proxy.Server, path, levelFlag string, lv *slog.LevelVar, log *slog.Logger) {
	start := time.Now()
	cfg, err := config.Load(path)
	if err != nil {
		srv.ReloadFailed()
		log.Error("reload failed; still serving the previous configuration", "err", err)
		return
	}
	old := srv.Config()
	if err := srv.Reload(cfg); err != nil {
		log.Error("reload failed; still serving the previous configuration", "err", err)
		return
	}
	if levelFlag == "" {
		if err := lv.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
			log.Warn("reload: log level unchanged", "level", cfg.Log.Level)
		}
	}
	if cfg.Admin.Listen != old.Admin.Listen {
		log.Warn("reload: admin.listen changes at the next restart", "running", old.Admin.Listen)
	}
	log.Info("reloaded", "config", path, "took", time.Since(start).Round(time.Microsecond))
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: each
// client and upstream connection costs a descriptor.
func raiseFileLimit(log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		old := rl.Cur
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
			log.Info("raised open file limit", "from", old, "to", rl.Max)
			return
		}
	}
	log.Info("open file limit", "limit", rl.Cur)
}
