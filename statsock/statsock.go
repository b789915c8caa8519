// Package statsock is uWSGI's stats socket, which both a vassal without an
// app (`stats = ADDR`) and the emperor (`emperor-stats = ADDR`) serve: it
// listens on an address as uWSGI reads one, and answers every connection
// with one JSON document, then closes it; with stats-http the document is
// framed as an HTTP/1.0 response.
package statsock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Limits of a stats server: how long one connection may take (uWSGI's
// socket-timeout default), how many are served at once (more are closed at
// once), and how much of a stats-http request is read.
const (
	ConnTimeout = 4 * time.Second
	MaxConns    = 16
	MaxRequest  = 8 << 10
)

// Listen listens on a stats address as uWSGI reads it: with a colon, TCP;
// else a unix socket path, @NAME being abstract. A socket file left at the
// path (by a process that died) is replaced, as uWSGI's bind_to_unix does;
// anything else at the path is an error. path is the socket file to remove
// at close ("" for TCP and abstract sockets): the net package does not
// remove it, so a listener that a reload replaced cannot remove a socket
// file bound again since.
func Listen(addr string) (ln net.Listener, path string, err error) {
	if strings.Contains(addr, ":") {
		ln, err := net.Listen("tcp", addr)
		return ln, "", err
	}
	if strings.HasPrefix(addr, "@") {
		ln, err := net.Listen("unix", addr)
		return ln, "", err
	}
	if path, err = filepath.Abs(addr); err != nil {
		return nil, "", err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, "", fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, "", err
		}
	}
	if ln, err = net.Listen("unix", path); err != nil {
		return nil, "", err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, path, nil
}

// Serve accepts on ln until it is closed, and answers each connection with
// answer on its own goroutine, at most MaxConns at once (more are closed at
// once). The connection has ConnTimeout to be answered and is closed after.
func Serve(ln net.Listener, log *slog.Logger, answer func(net.Conn)) {
	sem := make(chan struct{}, MaxConns)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				log.Error("stats server stopped", "err", err)
			}
			return
		}
		select {
		case sem <- struct{}{}:
			go func() {
				defer func() { <-sem }()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(ConnTimeout))
				answer(conn)
			}()
		default:
			conn.Close() // MaxConns are being served
		}
	}
}

// Write writes body on conn, framed as an HTTP/1.0 response when http is
// set, after reading the request's head (a client that sends nothing gets
// nothing, as from uWSGI).
func Write(conn net.Conn, body []byte, http bool) {
	if http {
		if !readRequest(conn) {
			return
		}
		head := "HTTP/1.0 200 OK\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
		body = append([]byte(head), body...)
	}
	_, _ = conn.Write(body)
}

// readRequest reads an HTTP request's head, up to its blank line, so the
// answer does not race a request still arriving (a close with unread bytes
// resets the connection).
func readRequest(r io.Reader) bool {
	var head []byte
	buf := make([]byte, 2048)
	for len(head) < MaxRequest {
		n, err := r.Read(buf)
		head = append(head, buf[:n]...)
		if bytes.Contains(head, []byte("\r\n\r\n")) || bytes.Contains(head, []byte("\n\n")) {
			return true
		}
		if err != nil {
			return len(head) > 0
		}
	}
	return true
}
