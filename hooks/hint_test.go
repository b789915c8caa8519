package hooks

import (
	"strings"
	"testing"
)

// TestUnknownActionHints: a misspelt action gets the action it stands for;
// a word that is another command, or the opposite of an action, gets no
// "did you mean" but the list of actions (or what to write instead).
func TestUnknownActionHints(t *testing.T) {
	for typed, want := range map[string]string{
		"exce":          `(did you mean exec?)`,
		"chmdo":         `(did you mean chmod?)`,
		"mkdri":         `(did you mean mkdir?)`,
		"unlnik":        `(did you mean unlink?)`,
		"unmount":       `(did you mean umount?)`,
		"wait_for_flie": `(did you mean wait_for_file?)`,
		"dc":            `(did you mean cd?)`,
		"link":          `(known: `,
		"cp":            `(known: `,
		"ls":            `(known: `,
		"cat":           `(known: `,
		"kill":          `(known: `,
		"rm":            `write unlink:FILE`,
		"sleep":         `write exec:sleep N`,
	} {
		_, err := Parse(AsRoot, typed+":x y", 1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", typed, err, want)
		}
	}
}
