package nodal

import (
	"maps"
	"testing"

	"pgregory.net/rapid"
)

// smallMap behaves as a Go map through the switch from slice to map.
func TestSmallMapMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var sm smallMap[int, int]
		model := map[int]int{}
		for range rapid.IntRange(0, 100).Draw(t, "ops") {
			k := rapid.IntRange(0, 20).Draw(t, "k")
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				v := rapid.Int().Draw(t, "v")
				sm.put(k, v)
				model[k] = v
			case 1:
				v, ok := sm.del(k)
				mv, mok := model[k]
				delete(model, k)
				if ok != mok || v != mv {
					t.Fatalf("del(%d) = %d, %v; want %d, %v", k, v, ok, mv, mok)
				}
			case 2:
				v, ok := sm.get(k)
				mv, mok := model[k]
				if ok != mok || v != mv {
					t.Fatalf("get(%d) = %d, %v; want %d, %v", k, v, ok, mv, mok)
				}
			}
			if sm.len() != len(model) {
				t.Fatalf("len %d, want %d", sm.len(), len(model))
			}
			got := map[int]int{}
			sm.each(func(k, v int) { got[k] = v })
			if !maps.Equal(got, model) {
				t.Fatalf("each = %v, want %v", got, model)
			}
		}
	})
}
