// Command ferretdb runs an embedded FerretDB v1.24.2 (MongoDB wire protocol,
// SQLite backend) for NoChat's integration tests. Start/stop it with
// scripts/ferretdb.sh rather than by hand.
//
// Usage:
//
//	ferretdb [-listen 127.0.0.1:27018] [-dir DIR] [-uri-file PATH] [-log-level warn]
//
// Why a wrapper instead of `go install .../cmd/ferretdb`: the upstream command
// is built with the module path github.com/FerretDB/FerretDB as the main
// module, so build/version's init() insists on a generated version.txt that is
// not part of the module zip and panics. That check only runs when the main
// module is github.com/FerretDB/FerretDB; this program's main module is
// different, so importing the embeddable package github.com/FerretDB/FerretDB/ferretdb
// needs no ldflags or build tags (version info just reads "unknown"/"embedded").
//
// Notes:
//   - With -dir unset a fresh temp directory is used and removed at exit;
//     a directory given with -dir is created if needed and kept.
//   - With -uri-file set, mongodb://HOST:PORT/ is written there (atomically,
//     via rename) once the port is listening, i.e. accepts TCP connections. -listen 127.0.0.1:0
//     picks a free port; the URI file then tells which one.
//   - SIGINT/SIGTERM stop the listener, close client connections and the
//     SQLite databases, then exit 0.
//   - FerretDB 1.x does not support TTL indexes (expireAfterSeconds).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	os.Exit(run())
}

func run() int {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on (port 0 = any free port)")
	dir := flag.String("dir", "", "SQLite data directory (default: a new temp dir, removed at exit)")
	uriFile := flag.String("uri-file", "", "if set, write the MongoDB URI to this file once connections are accepted")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()

	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ferretdb: unexpected arguments: %v\n", flag.Args())
		flag.Usage()
		return 2
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: invalid -log-level %q: %v\n", *logLevel, err)
		return 2
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dataDir, cleanup, err := prepareDir(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		return 1
	}
	defer cleanup()

	// SQLiteURL must be a file: URI naming an existing directory and ending with "/".
	sqliteURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dataDir) + "/"}).String()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// New binds the listening socket, so errors like "address already in use" surface here.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		return 1
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	uri := f.MongoDBURI()
	logger.Info("FerretDB starting", "uri", uri, "dir", dataDir)

	// The socket is already listening (bound in New), so clients can connect from now on:
	// the kernel queues them until Run's accept loop picks them up.
	if *uriFile != "" {
		if err := writeFileAtomic(*uriFile, uri+"\n"); err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb: writing -uri-file: %v\n", err)
			stop()
			<-done
			return 1
		}
	}

	select {
	case err = <-done:
		// Run returns only after ctx is canceled (it never fails on its own).
	case <-ctx.Done():
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			fmt.Fprintln(os.Stderr, "ferretdb: shutdown timed out")
			return 1
		}
	}

	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		return 1
	}

	logger.Info("FerretDB stopped")

	return 0
}

// prepareDir returns an absolute data directory and a cleanup func.
func prepareDir(dir string) (string, func(), error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "nochat-ferretdb-data-*")
		if err != nil {
			return "", nil, err
		}

		return tmp, func() { _ = os.RemoveAll(tmp) }, nil
	}

	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}

	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, err
	}

	return abs, func() {}, nil
}

// writeFileAtomic writes data to path via a temp file + rename, so readers never see a partial file.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}

	_, werr := tmp.WriteString(data)
	cerr := tmp.Close()

	if err = errors.Join(werr, cerr); err == nil {
		err = os.Rename(tmp.Name(), path)
	}

	if err != nil {
		_ = os.Remove(tmp.Name())
	}

	return err
}
