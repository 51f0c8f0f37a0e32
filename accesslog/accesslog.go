// Package accesslog writes access-log lines without ever making an event
// loop wait.
//
// A loop takes a free line buffer (Get), fills it, and queues it (Put); one
// writer goroutine drains the queue into a buffered file and gives the
// buffers back. The buffers are a fixed set, so the log's memory is
// bounded and a steady stream of lines allocates nothing. When the writer
// falls behind (a slow disk, a stuck pipe) and every buffer is queued, Get
// returns nil: the line is dropped and counted, and the request path goes
// on at full speed.
package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Format is the shape of a line.
type Format uint8

const (
	JSON     Format = iota // one JSON object per line
	Combined               // the Apache/nginx "combined" format
)

// ParseFormat maps the configuration's format names to a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "json":
		return JSON, nil
	case "combined":
		return Combined, nil
	}
	return 0, fmt.Errorf("unknown access log format %q", s)
}

// Slots is the number of line buffers: lines queued before drops begin.
// At 100k requests/s this is about 40 ms of lines, far more than a writer
// doing 64 KiB writes needs.
const Slots = 4096

// lineCap is the initial capacity of a line buffer. Lines are built from
// fields capped by the caller (see MaxField), so a buffer stays near it.
const lineCap = 512

// MaxField is the most bytes of one request field (target, User-Agent,
// Referer) put in a line; longer values are cut and end in "...".
const MaxField = 1024

// Log is an open access log.
//
// Invariant: every line buffer is at exactly one place: in free, in full,
// with a loop between Get and Put, or with the writer; so at most Slots
// lines are held. Only the writer goroutine touches out, w and file.
type Log struct {
	Format Format
	dest   string // "stdout" or a file path
	free   chan []byte
	full   chan []byte
	reopen chan chan error
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once

	lines, drops, errs atomic.Uint64

	file *os.File  // nil unless writing to a file
	out  io.Writer // file, stdout or the caller's writer
	w    *bufio.Writer
}

// Open starts a log writing to dest: "stdout" or a file path, opened for
// appending (created with mode 0640 if absent).
func Open(dest string, format Format) (*Log, error) {
	l := &Log{Format: format, dest: dest,
		free: make(chan []byte, Slots), full: make(chan []byte, Slots),
		reopen: make(chan chan error), quit: make(chan struct{}), done: make(chan struct{})}
	var out io.Writer = os.Stdout
	if dest != "stdout" {
		f, err := openFile(dest)
		if err != nil {
			return nil, err
		}
		l.file, out = f, f
	}
	l.out = out
	l.w = bufio.NewWriterSize(out, 64<<10)
	for i := 0; i < Slots; i++ {
		l.free <- make([]byte, 0, lineCap)
	}
	go l.run()
	return l, nil
}

// NewWriter starts a log writing to w (tests, or a caller's own sink).
func NewWriter(w io.Writer, format Format) *Log {
	l := &Log{Format: format, dest: "writer",
		free: make(chan []byte, Slots), full: make(chan []byte, Slots),
		reopen: make(chan chan error), quit: make(chan struct{}), done: make(chan struct{})}
	l.out = w
	l.w = bufio.NewWriterSize(w, 64<<10)
	for i := 0; i < Slots; i++ {
		l.free <- make([]byte, 0, lineCap)
	}
	go l.run()
	return l
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Dest is where the log writes ("stdout", a path, or "writer").
func (l *Log) Dest() string { return l.dest }

// Get returns an empty line buffer, or nil when all are queued: the caller
// drops its line (counted). Safe from any goroutine; never blocks.
func (l *Log) Get() []byte {
	select {
	case b := <-l.free:
		return b
	default:
		l.drops.Add(1)
		return nil
	}
}

// Put queues a line from Get (it should end in '\n'). Never blocks: the
// queue has room for every buffer.
func (l *Log) Put(line []byte) { l.full <- line }

// Lines is the number of lines written; Drops the number dropped because
// the buffers were full; Errors the number of lines lost to write errors.
func (l *Log) Lines() uint64  { return l.lines.Load() }
func (l *Log) Drops() uint64  { return l.drops.Load() }
func (l *Log) Errors() uint64 { return l.errs.Load() }

// Reopen closes and reopens the file (after logrotate moved it away) and
// returns once the writer has done so. A log on stdout just flushes.
func (l *Log) Reopen() error {
	res := make(chan error, 1)
	select {
	case l.reopen <- res:
	case <-l.done:
		return errors.New("access log closed")
	}
	return <-res
}

// Close writes the lines queued so far and stops the writer, waiting at
// most timeout (a writer stuck on a blocked sink is left to finish alone).
func (l *Log) Close(timeout time.Duration) {
	l.once.Do(func() { close(l.quit) })
	select {
	case <-l.done:
	case <-time.After(timeout):
	}
}

func (l *Log) run() {
	defer close(l.done)
	for {
		select {
		case b := <-l.full:
			l.write(b)
			if len(l.full) == 0 {
				l.flush()
			}
		case res := <-l.reopen:
			l.flush()
			res <- l.reopenFile()
		case <-l.quit:
			for {
				select {
				case b := <-l.full:
					l.write(b)
				default:
					l.flush()
					if l.file != nil {
						l.file.Close()
					}
					return
				}
			}
		}
	}
}

func (l *Log) write(b []byte) {
	if _, err := l.w.Write(b); err != nil {
		l.errs.Add(1)
		// bufio keeps a write error forever; start over so the log
		// recovers once the sink does (disk space freed).
		l.w.Reset(l.sink())
	} else {
		l.lines.Add(1)
	}
	l.free <- b[:0]
}

func (l *Log) flush() {
	if err := l.w.Flush(); err != nil {
		l.errs.Add(1)
		l.w.Reset(l.sink())
	}
}

func (l *Log) sink() io.Writer { return l.out }

func (l *Log) reopenFile() error {
	if l.file == nil {
		return nil
	}
	f, err := openFile(l.dest)
	if err != nil {
		return err // keep writing to the old file
	}
	l.file.Close()
	l.file, l.out = f, f
	l.w.Reset(f)
	return nil
}
