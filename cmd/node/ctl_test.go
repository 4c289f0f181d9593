package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/nodal-go/nodal/p2p"
	"github.com/stretchr/testify/require"
)

// TestJSONShapes checks that every command prints exactly one JSON object
// with the documented keys.
func TestJSONShapes(t *testing.T) {
	r := ctlResponse{
		Node: "a@h", Incarnation: 7, Listen: []string{"127.0.0.1:1"}, Gossip: "127.0.0.1:2",
		ListenBound: []string{"0.0.0.0:1"}, GossipBound: "0.0.0.0:2",
		Nodes: []string{"a@h", "b@h"}, Registered: []string{"nodal_ctl"}, Count: 3,
		Pid: "<a@h.5.7>", Reply: "hi", Reason: "killed", RTTMicros: 12.5, Func: "node.info", Result: `{"Name":"a@h"}`,
		Processes: []ctlProcess{{Pid: "<a@h.1.7>", Status: "idle"}, {Pid: "<a@h.2.7>", Name: "nodal_ctl", Status: "waiting", Queue: 1}},
	}
	for _, tc := range []struct {
		cmd  string
		want string
	}{
		{"nodes", `{"self":"a@h","nodes":["a@h","b@h"]}`},
		{"spawn", `{"pid":"<a@h.5.7>"}`},
		{"call", `{"reply":"hi","pid":"<a@h.5.7>"}`},
		{"send", `{"sent":true,"to":"<a@h.5.7>"}`},
		{"kill", `{"pid":"<a@h.5.7>","reason":"killed"}`},
		{"ping", `{"node":"a@h","pong":true,"rtt_us":12.5}`},
		{"info", `{"name":"a@h","incarnation":7,"listen":["127.0.0.1:1"],"gossip":"127.0.0.1:2","bound_listen":["0.0.0.0:1"],"bound_gossip":"0.0.0.0:2","nodes":["a@h","b@h"],"hidden_nodes":[],"processes":3,"registered":["nodal_ctl"]}`},
		{"rpc", `{"node":"a@h","func":"node.info","result":{"Name":"a@h"}}`},
		{"processes", `{"node":"a@h","processes":[{"pid":"<a@h.1.7>","status":"idle","queue":0},{"pid":"<a@h.2.7>","name":"nodal_ctl","status":"waiting","queue":1}]}`},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var buf bytes.Buffer
			writeJSON(&buf, jsonOf(tc.cmd, r))
			require.Equal(t, tc.want+"\n", buf.String())
			require.True(t, json.Valid(buf.Bytes()))
		})
	}
	var buf bytes.Buffer
	writeJSON(&buf, jsonOf("nodes", ctlResponse{Node: "a@h"}))
	require.Equal(t, `{"self":"a@h","nodes":[]}`+"\n", buf.String(), "an empty list is [], not null")
}

func TestCtlErrorsAreJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := cmdCtl(t.Context(), []string{"--json", "--cookie", "c", "nodes"}, env(nil), &out, &errb)
	require.Equal(t, 2, code)
	require.Empty(t, errb.String())
	var v map[string]string
	require.NoError(t, json.Unmarshal(out.Bytes(), &v))
	require.Contains(t, v["error"], "--to")
	require.Len(t, v, 1)

	out.Reset()
	code = cmdCtl(t.Context(), []string{"--cookie", "c", "nodes"}, env(nil), &out, &errb)
	require.Equal(t, 2, code)
	require.Empty(t, out.String())
	require.Equal(t, "nodal ctl: --to HOST:PORT is required\n", errb.String())
}

func TestPlainOutput(t *testing.T) {
	var buf bytes.Buffer
	writePlain(&buf, "nodes", ctlResponse{Node: "b@h", Nodes: []string{"a@h", "b@h"}})
	require.Equal(t, "a@h\nb@h (self)\n", buf.String())
	buf.Reset()
	writePlain(&buf, "call", ctlResponse{Reply: "hi", Pid: "<a@h.5.7>"})
	require.Equal(t, "<a@h.5.7> replied \"hi\"\n", buf.String())
	buf.Reset()
	writePlain(&buf, "processes", ctlResponse{Processes: []ctlProcess{{Pid: "<a@h.1.7>", Status: "idle"}}})
	require.Equal(t, "<a@h.1.7> - idle queue=0\n", buf.String())
	buf.Reset()
	writePlain(&buf, "rpc", ctlResponse{Result: `{"A":1}`})
	require.Equal(t, "{\n  \"A\": 1\n}\n", buf.String())
}

func TestFigureFormat(t *testing.T) {
	require.Equal(t, "remote_send_msgs_per_s 1234568 msg/s", figure{"remote_send_msgs_per_s", 1234567.8, "msg/s"}.String())
	require.Equal(t, "call_p50_us 41.2 us", figure{"call_p50_us", 41.23, "us"}.String())
}

// startTestNode starts a node of the binary for a test on loopback, with
// ProfileLocal, and free ports unless o names them; stop it with stopNode.
func startTestNode(t *testing.T, ctx context.Context, o startOptions) *runningNode {
	t.Helper()
	o.Listen, o.Gossip = cmp.Or(o.Listen, "127.0.0.1:0"), cmp.Or(o.Gossip, "127.0.0.1:0")
	o.Profile = p2p.ProfileLocal
	r, err := startNode(ctx, o, io.Discard)
	require.NoError(t, err)
	return r
}
