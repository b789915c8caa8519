package vassal

import (
	"strings"
	"testing"
)

func TestMergeEnvLaterWins(t *testing.T) {
	got := mergeEnv(baseEnv(), []string{"HOME=/app", "A=1"}, []string{"A=2", "B=3"})
	want := "PATH=" + DefaultPath + " HOME=/app A=2 B=3"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
