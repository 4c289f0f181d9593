package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
)

// The floor: what the bare transports do between the same two kinds of OS
// process on loopback, with nothing of nodal in the way, measured in the
// same run as nodal so that a figure and its floor share the machine's
// mood. Variants: "tcp" (a net.Conn) and "noise" (that conn secured by
// go-libp2p's Noise transport, as nodal's direct connections are, no
// muxer). Frames are a 4-byte little-endian length and the payload; a zero
// length ends a throughput run. In mode "lat" the peer answers from its
// reading goroutine, the fewest hand-offs possible; in "lat-handoff" each
// side hands every frame from its reader to another goroutine, the fewest
// a process separate from its connection's reader can have.

// floorPeerArg is the hidden bench argument that runs the floor's peer.
const floorPeerArg = "floor-peer"

// floorLatPayload is the payload of a round trip, as bench call's.
const floorLatPayload = 32

// floorConn is the parent's side of one floor connection to a peer process.
type floorConn struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	c   net.Conn // the secured one for noise
	br  *bufio.Reader
	bw  *bufio.Writer
}

// startFloor starts a floor peer process for variant ("tcp" or "noise",
// mode "lat" or "tput") and connects to it.
func startFloor(ctx context.Context, variant, mode string) (*floorConn, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench", floorPeerArg, variant, mode)
	dieWithParent(cmd)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor peer: %w", err)
	}
	fc := &floorConn{cmd: cmd, in: in}
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "READY" {
		fc.close()
		return nil, fmt.Errorf("floor peer: bad ready line %q: %v", strings.TrimSpace(line), err)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", f[1])
	if err != nil {
		fc.close()
		return nil, fmt.Errorf("floor peer: %w", err)
	}
	fc.c = raw
	if variant == "noise" {
		id, err := peer.Decode(f[2])
		if err == nil {
			fc.c, err = secureFloor(ctx, raw, id)
		}
		if err != nil {
			_ = raw.Close()
			fc.close()
			return nil, fmt.Errorf("floor peer: noise: %w", err)
		}
	}
	fc.br = bufio.NewReaderSize(fc.c, 64<<10)
	fc.bw = bufio.NewWriterSize(fc.c, 64<<10)
	return fc, nil
}

// secureFloor runs Noise on raw as the dialer (id "" for the listener).
func secureFloor(ctx context.Context, raw net.Conn, id peer.ID) (net.Conn, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	t, err := noise.New(noise.ID, key, nil)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return t.SecureInbound(ctx, raw, "")
	}
	return t.SecureOutbound(ctx, raw, id)
}

func (fc *floorConn) close() {
	if fc.c != nil {
		_ = fc.c.Close()
	}
	_ = fc.in.Close() // the peer exits when its stdin closes
	done := make(chan struct{})
	go func() { // ends when the peer exits
		_ = fc.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = fc.cmd.Process.Kill()
		<-done
	}
}

func (fc *floorConn) cpu() (time.Duration, error) {
	return cpuOf(fc.cmd.Process.Pid)
}

// floorLatency measures sequential 32-byte round trips for d (after 1,000
// warm-up ones) on variant ("tcp" or "noise") in mode "lat" (each side
// reads and writes on one goroutine) or "lat-handoff" (each side reads on
// a goroutine of its own and hands each frame over a channel to the one
// that writes, as a process separate from its connection's reader must):
// the floors of bench call. Figures are named floor_VARIANT_rtt_* or
// floor_VARIANT_handoff_rtt_*.
func floorLatency(ctx context.Context, variant, mode string, d time.Duration) ([]figure, error) {
	fc, err := startFloor(ctx, variant, mode)
	if err != nil {
		return nil, err
	}
	var replies chan floorReply
	defer func() {
		fc.close() // ends the reader, if any
		if replies != nil {
			for range replies { // until the reader has ended
			}
		}
	}()
	frame := make([]byte, 4+floorLatPayload)
	binary.LittleEndian.PutUint32(frame, floorLatPayload)
	for i := range floorLatPayload {
		frame[4+i] = byte(i)
	}
	reply := make([]byte, len(frame))
	if mode == "lat-handoff" {
		replies = make(chan floorReply, 1)
		go readFloorReplies(fc.br, len(frame), replies) // ends when the conn closes
	}
	rtt := func() error {
		if _, err := fc.bw.Write(frame); err != nil {
			return err
		}
		if err := fc.bw.Flush(); err != nil {
			return err
		}
		got := reply
		var err error
		if replies == nil {
			_, err = io.ReadFull(fc.br, reply)
		} else {
			r := <-replies
			got, err = r.b, r.err
		}
		if err == nil && !bytes.Equal(got, frame) {
			err = errors.New("reply differs from the request")
		}
		return err
	}
	for range 1000 {
		if err := rtt(); err != nil {
			return nil, fmt.Errorf("floor round trip: %w", err)
		}
	}
	c0, err := bothCPU(fc)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, 1<<16)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		t := time.Now()
		if err := rtt(); err != nil {
			return nil, fmt.Errorf("floor round trip: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	c1, err := bothCPU(fc)
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	n := float64(len(lat))
	name := "floor_" + variant + "_rtt_"
	if mode == "lat-handoff" {
		name = "floor_" + variant + "_handoff_rtt_"
	}
	return []figure{
		{name + "p50_us", quantileUS(lat, 0.50), "us"},
		{name + "p99_us", quantileUS(lat, 0.99), "us"},
		{name + "cpu_us_per_rtt", float64((c1 - c0).Microseconds()) / n, "us"},
	}, nil
}

// floorReply is one frame (or the read's error) handed from a reading
// goroutine to the one that waits for it.
type floorReply struct {
	b   []byte
	err error
}

// readFloorReplies reads size-byte frames from br and sends each, in a
// buffer of its own, on out until a read fails; it sends that error and
// closes out.
func readFloorReplies(br *bufio.Reader, size int, out chan<- floorReply) {
	defer close(out)
	for {
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			out <- floorReply{err: err}
			return
		}
		out <- floorReply{b: b}
	}
}

// floorThroughput streams size-byte frames one way on Noise without a
// muxer for d, then an end marker; the peer acks its count: the floor of
// bench remote.
func floorThroughput(ctx context.Context, size int, d time.Duration) ([]figure, error) {
	fc, err := startFloor(ctx, "noise", "tput")
	if err != nil {
		return nil, err
	}
	defer fc.close()
	frame := make([]byte, 4+size)
	binary.LittleEndian.PutUint32(frame, uint32(size))
	c0, err := bothCPU(fc)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		for range 64 {
			if _, err := fc.bw.Write(frame); err != nil {
				return nil, fmt.Errorf("floor send: %w", err)
			}
		}
	}
	var ack [8]byte
	if _, err := fc.bw.Write(make([]byte, 4)); err == nil {
		err = fc.bw.Flush()
	}
	if _, err := io.ReadFull(fc.br, ack[:]); err != nil {
		return nil, fmt.Errorf("floor ack: %w", err)
	}
	secs := time.Since(start).Seconds()
	c1, err := bothCPU(fc)
	if err != nil {
		return nil, err
	}
	msgs := float64(binary.LittleEndian.Uint64(ack[:]))
	return []figure{
		{"floor_noise_msgs_per_s", msgs / secs, "msg/s"},
		{"floor_noise_mb_per_s", msgs * float64(size) / 1e6 / secs, "MB/s"},
		{"floor_noise_cpu_ns_per_msg", float64((c1 - c0).Nanoseconds()) / max(msgs, 1), "ns"},
	}, nil
}

// bothCPU is the CPU time of this process and of the floor peer.
func bothCPU(fc *floorConn) (time.Duration, error) {
	self, err := selfCPU()
	if err != nil {
		return 0, err
	}
	child, err := fc.cpu()
	return self + child, err
}

func quantileUS(sorted []time.Duration, f float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(f*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1e3
}

// runFloorPeer is the floor's peer process: it listens on loopback, prints
// "READY addr peer-id", serves one connection and exits when its stdin
// closes.
func runFloorPeer(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return usagef("bench %s: want VARIANT MODE", floorPeerArg)
	}
	variant, mode := args[0], args[1]
	if variant != "tcp" && variant != "noise" || mode != "lat" && mode != "lat-handoff" && mode != "tput" {
		return usagef("bench %s: unknown variant or mode %q %q", floorPeerArg, variant, mode)
	}
	go func() { // ends the process when the parent is done with it
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "READY %s %s\n", ln.Addr(), id)
	raw, err := ln.Accept()
	if err != nil {
		return err
	}
	c := raw
	if variant == "noise" {
		t, err := noise.New(noise.ID, key, nil)
		if err != nil {
			return err
		}
		if c, err = t.SecureInbound(context.Background(), raw, ""); err != nil {
			return err
		}
	}
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	if mode == "lat-handoff" {
		return floorEcho(br, bw)
	}
	buf := make([]byte, 1<<20)
	var hdr [4]byte
	var count uint64
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return floorEOF(err)
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		if n > len(buf) {
			return fmt.Errorf("floor peer: frame of %d bytes", n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return floorEOF(err)
		}
		switch {
		case mode == "lat":
			_, _ = bw.Write(hdr[:])
			_, _ = bw.Write(buf[:n])
			if err := bw.Flush(); err != nil {
				return floorEOF(err)
			}
		case n == 0:
			var ack [8]byte
			binary.LittleEndian.PutUint64(ack[:], count)
			_, _ = bw.Write(ack[:])
			if err := bw.Flush(); err != nil {
				return floorEOF(err)
			}
		default:
			count++
		}
	}
}

// floorEcho answers each frame from a goroutine other than the reader:
// the reader hands it over a channel; the writer echoes it and flushes when
// no other is waiting.
func floorEcho(br *bufio.Reader, bw *bufio.Writer) error {
	frames := make(chan []byte, 1024)
	werr := make(chan error, 1)
	go func() { // the writer: ends when frames closes
		var err error
		for b := range frames {
			if err == nil {
				_, err = bw.Write(b)
			}
			if err == nil && len(frames) == 0 {
				err = bw.Flush()
			}
		}
		werr <- err
	}()
	var err error
	for {
		var hdr [4]byte
		if _, err = io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		if n > floorLatPayload {
			err = fmt.Errorf("floor peer: frame of %d bytes in a latency run", n)
			break
		}
		b := make([]byte, 4+n)
		copy(b, hdr[:])
		if _, err = io.ReadFull(br, b[4:]); err != nil {
			break
		}
		frames <- b
	}
	close(frames)
	return errors.Join(floorEOF(err), floorEOF(<-werr))
}

// floorEOF is nil for the parent hanging up.
func floorEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
