package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
)

// The heal commands: ctl partitions and ctl quorum, answered by the node's
// heal service (heal.View, with the sums of its Healed events), and
// start's --expect.

// jsonHealsOf is the JSON shape of what the node's heal service reported
// in its Healed events since the node started: how many, what their
// reconcilers exchanged in all, and the last one. ctl partitions shows it,
// so a harness driving real nodes can print the bytes a heal moved.
func jsonHealsOf(hs heal.Heals) jsonHeals {
	j := jsonHeals{Count: hs.Count, Bytes: hs.Exchange.Bytes, Entries: hs.Exchange.Entries, Conflicts: hs.Exchange.Conflicts}
	if h := hs.Last; h != nil {
		j.Last = &jsonHealed{At: h.At.UTC().Format(time.RFC3339Nano), Returned: nonNil(h.Returned), StillMissing: nonNil(h.StillMissing),
			LastedMS: float64(h.Lasted.Microseconds()) / 1e3, ConvergedMS: float64(h.Converged.Microseconds()) / 1e3,
			Bytes: h.Exchange.Bytes, Entries: h.Exchange.Entries, Conflicts: h.Exchange.Conflicts}
	}
	return j
}

// parseExpect splits --expect's comma-separated node names.
func parseExpect(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if err := nodal.ValidateNodeName(n); err != nil {
			return nil, usagef("--expect: %v", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// JSON shapes of the heal commands' answers.
type (
	jsonLost struct {
		Node      string   `json:"node"`
		Since     string   `json:"since"`
		Member    bool     `json:"member"`
		ReachedBy []string `json:"reached_by"`
		Gossip    string   `json:"gossip"`
		Attempts  int      `json:"attempts"`
		LastError string   `json:"last_error"`
	}
	jsonPartitions struct {
		Node        string     `json:"node"`
		Partitioned bool       `json:"partitioned"`
		Expected    []string   `json:"expected"`
		Reachable   []string   `json:"reachable"`
		Unreachable []jsonLost `json:"unreachable"`
		Left        []string   `json:"left"`
		Refused     []string   `json:"refused"`
		Heals       jsonHeals  `json:"heals"`
	}
	// jsonHeals sums the Healed events since the node started: what the
	// reconcilers (registry, groups) exchanged with the returned nodes.
	jsonHeals struct {
		Count     int         `json:"count"`
		Bytes     uint64      `json:"bytes"`
		Entries   uint64      `json:"entries"`
		Conflicts uint64      `json:"conflicts"`
		Last      *jsonHealed `json:"last"` // null before the first heal
	}
	jsonHealed struct {
		At           string   `json:"at"`
		Returned     []string `json:"returned"`
		StillMissing []string `json:"still_missing"`
		LastedMS     float64  `json:"lasted_ms"`
		ConvergedMS  float64  `json:"converged_ms"`
		Bytes        uint64   `json:"bytes"`
		Entries      uint64   `json:"entries"`
		Conflicts    uint64   `json:"conflicts"`
	}
	jsonQuorum struct {
		Node      string `json:"node"`
		Expected  int    `json:"expected"`
		Reachable int    `json:"reachable"`
		Majority  bool   `json:"majority"`
		Strategy  string `json:"strategy"`
		Paused    bool   `json:"paused"`
		Decision  string `json:"decision"`
	}
)

// healCmd answers partitions or quorum on the node; the answer travels as
// JSON in Result.
func (s *ctlService) healCmd(cmd string) ctlResponse {
	if s.heal == nil {
		return ctlResponse{Error: "the node runs no heal service"}
	}
	v := s.heal.View()
	var ans any
	switch cmd {
	case "partitions":
		p := jsonPartitions{Node: v.Self, Partitioned: v.Partitioned, Expected: nonNil(v.Expected), Reachable: nonNil(v.Reachable),
			Unreachable: []jsonLost{}, Left: nonNil(v.Left), Refused: nonNil(v.Refused), Heals: jsonHealsOf(v.Heals)}
		for _, l := range v.Unreachable {
			p.Unreachable = append(p.Unreachable, jsonLost{Node: l.Node, Since: l.Since.UTC().Format(time.RFC3339), Member: l.Member,
				ReachedBy: nonNil(l.ReachedBy), Gossip: l.GossipAddr, Attempts: l.Attempts, LastError: l.LastError})
		}
		ans = p
	default:
		q := jsonQuorum{Node: v.Self, Expected: len(v.Expected), Reachable: len(v.Reachable), Majority: v.Majority,
			Strategy: s.heal.Settings().Strategy.String(), Paused: v.Paused}
		if v.Decision != nil {
			q.Decision = v.Decision.String()
		}
		ans = q
	}
	b, err := json.Marshal(ans)
	if err != nil {
		return ctlResponse{Error: err.Error()}
	}
	return ctlResponse{Node: v.Self, Result: string(b)}
}

// healJSON is the object ctl --json prints for a heal command.
func healJSON(cmd string, r ctlResponse) any {
	if cmd == "partitions" {
		p := jsonPartitions{Expected: []string{}, Reachable: []string{}, Unreachable: []jsonLost{}, Left: []string{}, Refused: []string{}}
		if r.Result != "" {
			_ = json.Unmarshal([]byte(r.Result), &p)
		}
		return p
	}
	var q jsonQuorum
	if r.Result != "" {
		_ = json.Unmarshal([]byte(r.Result), &q)
	}
	return q
}

// writeHealPlain prints a heal command's answer as readable lines.
func writeHealPlain(w io.Writer, cmd string, r ctlResponse) {
	switch v := healJSON(cmd, r).(type) {
	case jsonPartitions:
		state := "whole"
		if v.Partitioned {
			state = "partitioned"
		}
		fmt.Fprintf(w, "%s: %s\nexpected %s\nreachable %s\n", v.Node, state, strings.Join(v.Expected, " "), strings.Join(v.Reachable, " "))
		for _, l := range v.Unreachable {
			how := "failed"
			if l.Member {
				how = "a member this node cannot reach"
			}
			fmt.Fprintf(w, "unreachable %s since %s (%s", l.Node, l.Since, how)
			if len(l.ReachedBy) > 0 {
				fmt.Fprintf(w, "; reached by %s", strings.Join(l.ReachedBy, " "))
			}
			fmt.Fprintf(w, "; %d reconnect attempts", l.Attempts)
			if l.LastError != "" {
				fmt.Fprintf(w, ", last: %s", oneLine(l.LastError))
			}
			fmt.Fprintln(w, ")")
		}
		if len(v.Left) > 0 {
			fmt.Fprintf(w, "left %s\n", strings.Join(v.Left, " "))
		}
		if len(v.Refused) > 0 {
			fmt.Fprintf(w, "refused (other heal settings) %s\n", strings.Join(v.Refused, " "))
		}
		h := v.Heals
		fmt.Fprintf(w, "heals %d: %d bytes, %d entries, %d conflicts exchanged\n", h.Count, h.Bytes, h.Entries, h.Conflicts)
		if l := h.Last; l != nil {
			fmt.Fprintf(w, "last heal at %s: %s back after %vms, converged in %vms (%d bytes, %d entries, %d conflicts)\n",
				l.At, strings.Join(l.Returned, " "), l.LastedMS, l.ConvergedMS, l.Bytes, l.Entries, l.Conflicts)
		}
	case jsonQuorum:
		maj := "no majority"
		if v.Majority {
			maj = "majority"
		}
		fmt.Fprintf(w, "%s: %s (%d of %d expected reachable)\nstrategy %s", v.Node, maj, v.Reachable, v.Expected, v.Strategy)
		if v.Paused {
			fmt.Fprint(w, ", paused")
		}
		fmt.Fprintln(w)
		if v.Decision != "" {
			fmt.Fprintf(w, "decision %s\n", v.Decision)
		}
	}
}
