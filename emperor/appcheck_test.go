package emperor

import (
	"errors"
	"strings"
	"testing"

	"github.com/emperor-dev/emperor/vassalfile"
)

// TestCheckVassalAgainstInstalledUWSGI: an app vassal's lines for uWSGI are
// checked against the installed uwsgi, in the same run as everything else.
func TestCheckVassalAgainstInstalledUWSGI(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.ini", "[uwsgi]\nhttp-socket = :9090\npsgi = /app/myapp.pl\nmountpoint-check = /app\n")
	v, err := LoadVassal(good)
	if err != nil {
		t.Fatal(err)
	}
	if v.Spec.App == nil || len(v.Spec.App.Lines) != 3 || len(v.Warnings) != 0 {
		t.Fatalf("app %+v warnings %v", v.Spec.App, v.Warnings)
	}
	bad := writeFile(t, dir, "bad.ini", "[uwsgi]\nhttp-socket = :9090\nrack = /srv/config.ru\nattach-deamon = x\nplugin = nosuch\n")
	_, err = LoadVassal(bad)
	var errs vassalfile.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{
		bad + ":3: rack needs uWSGI's rack plugin, which is not installed: apt-get install uwsgi-plugin-rack-ruby3.1",
		bad + ":4: unknown option",
		bad + ":5: plugin nosuch cannot be loaded",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
}
