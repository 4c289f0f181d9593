package supervisor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// BenchmarkSupervisorRestart measures supervisor restart latency: from the
// moment a child is told to crash to the moment its replacement runs,
// registered under the child's name (one op = one crash and restart).
//
//   - one_for_one: one child; the replacement's goroutine reports in.
//   - one_for_one+call: the same, then a Call to the name's new owner
//     answers (the replacement is reachable).
//   - one_for_all-10: ten children, the fifth crashes; all ten are stopped
//     (shutdown signal, wait for nodal.Down) and started again.
//
// The Erlang/OTP 25 reference is the same loop on OTP's supervisor (erl
// -noshell -s supbench main, module below). With this benchmark's flags
// (intensity 2^30, period 1 s) OTP's add_restart walks every restart of the
// last second, so the fair mechanics figure starts a fresh supervisor every
// 100 restarts (not timed), which keeps that list short:
//
//	-module(supbench). -behaviour(supervisor).
//	-export([main/0, init/1, start_worker/2, worker_init/2]).
//	init({S, N, B}) -> {ok, {#{strategy => S, intensity => 1 bsl 30, period => 1},
//	    [#{id => I, start => {?MODULE, start_worker, [name(I), B]}} || I <- lists:seq(0, N-1)]}}.
//	name(I) -> list_to_atom("w" ++ integer_to_list(I)).
//	start_worker(Name, B) -> {ok, proc_lib:spawn_link(?MODULE, worker_init, [Name, B])}.
//	worker_init(Name, B) -> register(Name, self()), B ! started, loop().
//	loop() -> receive crash -> exit(crash);
//	    {'$gen_call', nodal.From, Req} -> gen:reply(nodal.From, Req), loop(); _ -> loop() end.
//	batch(S, N, Call, Batch) ->  % returns ns for Batch restarts
//	    {ok, Sup} = supervisor:start_link(?MODULE, {S, N, self()}),
//	    [receive started -> ok end || _ <- lists:seq(1, N)],
//	    V = name(N div 2), T0 = erlang:monotonic_time(nanosecond),
//	    [begin whereis(V) ! crash, [receive started -> ok end || _ <- lists:seq(1, N)],
//	        case Call of true -> ping = gen_server:call(V, ping); false -> ok end
//	     end || _ <- lists:seq(1, Batch)],
//	    T = erlang:monotonic_time(nanosecond) - T0,
//	    exit(Sup, shutdown), receive {'EXIT', Sup, _} -> T end.
//	main() -> process_flag(trap_exit, true), logger:set_primary_config(level, none),
//	    [io:format("~p ~p ~p: ~.2f us/restart~n", [S, N, C,
//	        lists:sum([batch(S, N, C, 100) || _ <- lists:seq(1, It div 100)]) / It / 1000])
//	     || {S, N, C, It} <- [{one_for_one, 1, false, 200000}, {one_for_one, 1, true, 200000},
//	                          {one_for_all, 10, false, 20000}]],
//	    halt().
func BenchmarkSupervisorRestart(b *testing.B) {
	for _, bc := range []struct {
		name     string
		strategy Strategy
		children int
		call     bool
	}{
		{"one_for_one", OneForOne, 1, false},
		{"one_for_one+call", OneForOne, 1, true},
		{"one_for_all-10", OneForAll, 10, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			n, err := nodal.Start(ctx, nodal.Config{})
			require.NoError(b, err)
			defer func() { require.NoError(b, n.Stop(ctx)) }()

			started := make(chan nodal.Pid, bc.children)
			worker := func(w *nodal.Process) error {
				started <- w.Self()
				for {
					msg, err := w.Receive(w.Context())
					if err != nil {
						return err
					}
					switch m := msg.(type) {
					case nodal.CallRequest:
						w.Reply(m.From, m.Req)
					case string:
						return errors.New("crash")
					}
				}
			}
			var specs []Child
			for i := range bc.children {
				name := fmt.Sprintf("w%d", i)
				specs = append(specs, Child{ID: name, Start: func(p *nodal.Process) (nodal.Pid, error) {
					return p.Spawn(worker, nodal.WithName(name), nodal.WithLink())
				}})
			}
			_, err = startSup(n, Spec{
				Strategy:  bc.strategy,
				Intensity: 1 << 30, // never reached: every crash is restarted
				Period:    time.Second,
				Children:  specs,
			})
			require.NoError(b, err)
			victim := fmt.Sprintf("w%d", bc.children/2)
			for range bc.children {
				<-started
			}

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				pid, ok := n.Whereis(victim)
				if !ok {
					b.Fatal("victim not registered")
				}
				n.Send(pid, "crash")
				for range bc.children {
					<-started
				}
				if bc.call {
					next, ok := n.Whereis(victim)
					if !ok || next == pid {
						b.Fatal("replacement not registered")
					}
					if _, err := n.Call(ctx, next, "ping"); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/restart")
		})
	}
}
