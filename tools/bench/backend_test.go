package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func req(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(extra, "") + "\r\n"
}

func TestHandleSingleAndPipelined(t *testing.T) {
	r := newResponder()
	cs := &connState{}
	out, rest, closeConn := r.handle(cs, []byte(req("/")))
	if string(out) != string(r.byPath["/"]) || len(rest) != 0 || closeConn {
		t.Fatalf("single: out %q rest %q close %v", out, rest, closeConn)
	}
	// three pipelined requests and half of a fourth
	in := req("/") + req("/64k?x=1") + req("/missing") + "GET /1k HTTP/1.1\r\nHo"
	out, rest, closeConn = r.handle(cs, []byte(in))
	want := string(r.byPath["/"]) + string(r.byPath["/64k"]) + string(r.notFound)
	if string(out) != want {
		t.Fatalf("pipelined: got %d bytes, want %d", len(out), len(want))
	}
	if string(rest) != "GET /1k HTTP/1.1\r\nHo" || closeConn {
		t.Fatalf("rest %q close %v", rest, closeConn)
	}
}

func TestHandleBodyCloseAndErrors(t *testing.T) {
	r := newResponder()
	cs := &connState{}
	// a POST body is skipped, partial body waits
	post := "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel"
	out, rest, _ := r.handle(cs, []byte(post))
	if out != nil || string(rest) != post {
		t.Fatalf("partial body answered: %q rest %q", out, rest)
	}
	out, rest, _ = r.handle(cs, []byte(post+"lo"+req("/1k")))
	if string(out) != string(r.byPath["/"])+string(r.byPath["/1k"]) || len(rest) != 0 {
		t.Fatalf("post+get: %d bytes, rest %q", len(out), rest)
	}
	// Connection: close and HTTP/1.0 close after answering; later bytes are dropped
	for _, in := range []string{req("/", "Connection: close\r\n") + req("/"), "GET / HTTP/1.0\r\n\r\n"} {
		out, rest, closeConn := r.handle(cs, []byte(in))
		if string(out) != string(r.byPath["/"]) || !closeConn || len(rest) != 0 {
			t.Fatalf("%q: out %q close %v rest %q", in, out, closeConn, rest)
		}
	}
	// HTTP/1.0 with keep-alive stays open
	if _, _, c := r.handle(cs, []byte("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")); c {
		t.Fatal("HTTP/1.0 keep-alive closed")
	}
	// garbage and chunked requests get 400 and close, after earlier answers
	out, _, closeConn := r.handle(cs, []byte(req("/")+"BLAH\r\n\r\n"))
	if string(out) != string(r.byPath["/"])+string(r.badReq) || !closeConn {
		t.Fatalf("bad request: %q close %v", out, closeConn)
	}
	if _, _, c := r.handle(cs, []byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")); !c {
		t.Fatal("chunked request not refused")
	}
	// an endless head gets 431
	out, _, closeConn = r.handle(cs, []byte("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", maxHeaderBytes)))
	if string(out) != string(r.tooLarge) || !closeConn {
		t.Fatalf("oversized head: %q", out)
	}
}

func TestBodyPathsResponses(t *testing.T) {
	r := newResponder()
	for path, n := range bodyPaths {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(r.byPath[path]))), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(body) != n || resp.ContentLength != int64(n) || resp.Close {
			t.Fatalf("%s: status %d body %d cl %d close %v", path, resp.StatusCode, len(body), resp.ContentLength, resp.Close)
		}
	}
	if len(smallBody) != 14 || bodyPaths["/64k"] != 65536 {
		t.Fatal("the spec's bodies are 14 bytes and 64 KiB")
	}
}

// The evio server itself, over a real socket: keep-alive, pipelining, a
// request split across writes, and verifyBody.
func TestServeBackendSocket(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	go serveBackend(addr, 1) // runs until the test binary exits
	if err := waitListening(addr, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, req("/")+req("/64k"))
	io.WriteString(c, "GET /1k HTTP/1.1\r\n")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "Host: x\r\n\r\n")
	for _, want := range []int{14, 65536, 1024} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || len(body) != want {
			t.Fatalf("body %d want %d (%v)", len(body), want, err)
		}
	}
	ctx := t.Context()
	if err := verifyBody(ctx, "http://"+addr+"/64k", 65536); err != nil {
		t.Fatal(err)
	}
	if err := verifyBody(ctx, "http://"+addr+"/", 15); err == nil {
		t.Fatal("verifyBody accepted a wrong length")
	}
	if err := verifyBody(ctx, "http://"+addr+"/nope", 10); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("verifyBody on 404: %v", err)
	}
}
