package volumemove

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// serve listens on cfg.addr and serves the volume at cfg.root until a
// target acknowledges a complete transfer.
func serve(ctx context.Context, cfg config) (Result, error) {
	if err := checkToken(cfg.token); err != nil {
		return Result{}, err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return Result{}, fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	fmt.Fprintf(cfg.stderr, "volume-move serve: serving %s on %s\n", cfg.root, ln.Addr())
	return serveOn(ctx, ln, cfg)
}

func checkToken(token string) error {
	if len(token) < minTokenLen {
		return fmt.Errorf("%s must hold at least %d characters", EnvToken, minTokenLen)
	}
	return nil
}

// serveOn serves on ln (which it closes). Connections are served
// concurrently, up to cfg.maxConns: a restarted target must not wait for
// the half-dead connection of its previous attempt to time out.
func serveOn(ctx context.Context, ln net.Listener, cfg config) (Result, error) {
	defer ln.Close()
	if err := checkToken(cfg.token); err != nil {
		return Result{}, err
	}
	root, err := os.OpenRoot(cfg.root)
	if err != nil {
		return Result{}, fmt.Errorf("open volume: %w", err)
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopLn := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopLn()

	done := make(chan Result, 1)
	slots := make(chan struct{}, cfg.maxConns)
	var wg sync.WaitGroup
	var acceptErr error
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				acceptErr = err
				break
			}
			// Out of descriptors and the like: wait, then go on.
			fmt.Fprintf(cfg.stderr, "volume-move serve: accept: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			fmt.Fprintf(cfg.stderr, "volume-move serve: %s: refused, %d transfers already running\n", conn.RemoteAddr(), cfg.maxConns)
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			res, err := serveConn(ctx, root, conn, cfg)
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(cfg.stderr, "volume-move serve: %s: %v\n", conn.RemoteAddr(), err)
				}
				return
			}
			select {
			case done <- res:
			default:
			}
			cancel()
		})
	}
	cancel()
	wg.Wait()
	select {
	case res := <-done:
		return res, nil
	default:
	}
	if acceptErr != nil {
		return Result{}, fmt.Errorf("accept: %w", acceptErr)
	}
	return Result{}, fmt.Errorf("stopped before a target fetched the volume: %w", context.Cause(ctx))
}

// serveConn checks the connection's token, streams the volume and its
// trailer, and waits for the target's answer.
func serveConn(ctx context.Context, root *os.Root, conn net.Conn, cfg config) (Result, error) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := conn.SetReadDeadline(time.Now().Add(cfg.tokenTimeout)); err != nil {
		return Result{}, err
	}
	br := bufio.NewReaderSize(conn, 512)
	token, err := readLine(br, maxTokenLine)
	if err != nil {
		return Result{}, fmt.Errorf("read token: %w", err)
	}
	if !tokenEqual(token, cfg.token) {
		return Result{}, errors.New("wrong token; connection closed")
	}

	bw := bufio.NewWriterSize(deadlineConn{c: conn, idle: cfg.idleTimeout}, bufSize)
	d := newDigest()
	tw := tar.NewWriter(io.MultiWriter(bw, d))
	files, skipped, err := writeTree(ctx, root, tw)
	if err != nil {
		return Result{}, fmt.Errorf("send volume: %w", err)
	}
	if err := tw.Close(); err != nil {
		return Result{}, fmt.Errorf("send volume: %w", err)
	}
	t := d.trailer(files)
	line, err := json.Marshal(t)
	if err != nil {
		return Result{}, err
	}
	if _, err := fmt.Fprintf(bw, "%s\n", line); err != nil {
		return Result{}, fmt.Errorf("send trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Result{}, fmt.Errorf("send volume: %w", err)
	}
	if skipped > 0 {
		fmt.Fprintf(cfg.stderr, "volume-move serve: warning: %d devices, sockets or FIFOs not sent\n", skipped)
	}

	// The target syncs and moves its staged data into place before it
	// answers.
	if err := conn.SetReadDeadline(time.Now().Add(cfg.ackTimeout)); err != nil {
		return Result{}, err
	}
	ack, err := readLine(br, maxAckLine)
	if err != nil {
		return Result{}, fmt.Errorf("read the target's answer: %w", err)
	}
	if ack != "ok" {
		return Result{}, fmt.Errorf("target answered %q", ack)
	}
	return Result{Files: t.Files, Bytes: t.Bytes, SHA256: t.SHA256}, nil
}

// tokenEqual compares in constant time, the length included.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// fileID identifies an inode, for hard links.
type fileID struct{ dev, ino uint64 }

// writeTree writes the tree under root as tar entries: "./" for the root,
// then a depth-first walk in lexical order (a directory before its
// contents). It returns the number of entries and of skipped special
// files.
func writeTree(ctx context.Context, root *os.Root, tw *tar.Writer) (files, skipped int64, err error) {
	links := map[fileID]string{}
	buf := make([]byte, bufSize)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr := header(fi)
		switch m := fi.Mode(); {
		case m.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name = p + "/"
			if p == "." {
				hdr.Name = "./"
			}
		case m.IsRegular():
			hdr.Name = p
			if st, ok := statOf(fi); ok && st.nlink > 1 {
				id := fileID{st.dev, st.ino}
				if first, ok := links[id]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					break
				}
				links[id] = p
			}
			files++
			return writeFile(root, tw, hdr, fi, buf)
		case m&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Name = p
			if hdr.Linkname, err = root.Readlink(p); err != nil {
				return err
			}
		default:
			skipped++
			return nil
		}
		files++
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	return files, skipped, err
}

// header makes the common part of an entry's header: mode with the
// set-id and sticky bits, owner, modification time (PAX keeps its
// nanoseconds).
func header(fi fs.FileInfo) *tar.Header {
	m := fi.Mode()
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	hdr := &tar.Header{Mode: mode, ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if st, ok := statOf(fi); ok {
		hdr.Uid, hdr.Gid = st.uid, st.gid
	}
	return hdr
}

// writeFile sends a regular file. It is opened without following a
// link swapped in since the walk, and must still be the walked inode.
func writeFile(root *os.Root, tw *tar.Writer, hdr *tar.Header, walked fs.FileInfo, buf []byte) error {
	f, err := root.OpenFile(hdr.Name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, walked) {
		return fmt.Errorf("%s: changed during the move", hdr.Name)
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	n, err := io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), buf)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s: shrank during the move", hdr.Name)
	}
	return nil
}
