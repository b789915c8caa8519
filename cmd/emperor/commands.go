package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emperor-dev/emperor/api"
	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/emperor"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/sdnotify"
	"github.com/emperor-dev/emperor/vassalfile"
	"github.com/spf13/cobra"
)

// version is set by the Makefile from git describe.
var version = "dev"

// exitError carries an exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func execute(args []string) int {
	root := newRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "emperor:", err)
		return 1
	}
}

// newLogger is the emperor's logger in format; the vassals' PID 1s get the
// same format in their start message.
func newLogger(w io.Writer, format string) (*slog.Logger, reexec.LogFormat, error) {
	f, err := reexec.ParseLogFormat(format)
	if err != nil {
		return nil, "", fmt.Errorf("--log-format: %w", err)
	}
	return slog.New(f.Handler(w)), f, nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var vassals, configFile, controlPath, logFormat, apiPath, apiTCP, apiTokenFile string
	cfg := emperor.DefaultConfig()
	root := &cobra.Command{
		Use:   "emperor --vassals DIR",
		Short: "Run per-tenant vassals in their own namespaces, from uWSGI-style vassal files",
		Long: `emperor watches a directory of vassal files (uWSGI's ini dialect) and runs each
vassal as PID 1 of its own PID and mount namespaces. A new file spawns a vassal,
a touched file reloads it in place, a deleted file stops it without a trace.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, format, err := newLogger(stderr, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger, cfg.LogFormat = log, format
			if configFile != "" {
				if err := cfg.LoadFile(configFile); err != nil {
					return err
				}
			}
			if vassals != "" {
				cfg.VassalsDir = vassals
			}
			cfg.ControlPath = controlPath
			// systemd's notification socket is the emperor's alone:
			// FromEnv takes it out of the environment every vassal
			// inherits.
			if cfg.Notifier, err = sdnotify.FromEnv(); err != nil {
				return err
			}
			emperor.Version = version
			e, err := emperor.New(cfg)
			if err != nil {
				return err
			}
			ac, err := apiConfig(apiPath, apiTCP, apiTokenFile, controlPath)
			if err != nil {
				return err
			}
			srv, err := api.Start(e, ac, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			ctx, stop := signalContext(func() {
				n, _ := e.Reload("")
				log.Info("SIGHUP: reloading every vassal", "vassals", n)
			})
			defer stop()
			return e.Run(ctx)
		},
	}
	root.Flags().StringVar(&vassals, "vassals", "", "directory of vassal files (*.ini)")
	root.Flags().StringVar(&configFile, "config", "", "emperor config file ([uwsgi] section: emperor, emperor-use-clone, emperor-throttle, emperor-max-throttle, reload-mercy, ...)")
	root.PersistentFlags().StringVar(&controlPath, "control", emperor.DefaultControlPath, "unix control socket")
	root.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	root.Flags().StringVar(&apiPath, "api", "", `unix socket of the HTTP API and /metrics (default: api.sock beside the control socket; "none": no API)`)
	root.Flags().StringVar(&apiTCP, "api-tcp", "", "also serve the HTTP API on this host:port (needs --api-token-file)")
	root.Flags().StringVar(&apiTokenFile, "api-token-file", "", "file whose first line is the bearer token TCP requests to the API must carry (mode 0600)")
	root.AddCommand(newCheck(stdout), newRun(stderr, &cfg), newStatus(stdout, &controlPath), newReload(stdout, &controlPath), newVersion(stdout), newOptions(stdout))
	return root
}

func newCheck(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate vassal files; prints file:line: message for every problem",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ctx, stop := interruptContext()
			defer stop()
			bad := 0
			for _, path := range files {
				diags, err := checkBounded(ctx, path, timeout)
				if err != nil {
					return err
				}
				for _, d := range diags {
					fmt.Fprintln(stdout, d.String())
					if !d.Warning {
						bad++
					}
				}
			}
			if bad > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", emperor.DefaultCheckTimeout, "give up on a file whose check takes longer (a path into a hung mount)")
	return cmd
}

// checkFile validates a vassal file exactly as the emperor does before it
// spawns or reloads the vassal.
func checkFile(path string) []vassalfile.Diag {
	v, err := emperor.LoadVassal(path)
	var errs vassalfile.Errors
	switch {
	case errors.As(err, &errs):
		return errs
	case err != nil:
		return []vassalfile.Diag{{File: path, Message: err.Error()}}
	}
	return v.Warnings
}

func newRun(stderr io.Writer, cfg *emperor.Config) *cobra.Command {
	var clone string
	var mercy time.Duration
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run one vassal in the foreground, without the daemon (for debugging)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, format, _ := newLogger(stderr, "text")
			c := *cfg
			c.Logger, c.LogFormat = log, format
			ns, err := vassalfile.ParseCloneFlags(clone)
			if err != nil {
				return fmt.Errorf("--clone: %w", err)
			}
			c.Namespaces = ns
			// `emperor run` tells a service manager nothing (it is for
			// debugging), but its vassal must not inherit the socket.
			if _, err := sdnotify.FromEnv(); err != nil {
				return err
			}
			if mercy > 0 {
				c.Mercy = mercy
			}
			// A SIGHUP while a reload is still pending adds nothing to it.
			reload := make(chan struct{}, 1)
			ctx, stop := signalContext(func() {
				select {
				case reload <- struct{}{}:
				default:
				}
			})
			defer stop()
			return emperor.RunOne(ctx, c, args[0], reload)
		},
	}
	cmd.Flags().StringVar(&clone, "clone", reexec.DefaultNamespaces.String(), "namespaces (as emperor-use-clone)")
	cmd.Flags().DurationVar(&mercy, "mercy", 0, "reload-mercy (default "+vassalfile.FormatDuration(vassalfile.DefaultOf[time.Duration]("reload-mercy"))+")")
	return cmd
}

func newStatus(stdout io.Writer, controlPath *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the vassal table of a running emperor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := control.Call(*controlPath, control.Request{Cmd: "status"}, 5*time.Second)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			printStatus(stdout, resp, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newReload(stdout io.Writer, controlPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "reload [NAME]",
		Short: "Reload one vassal (or every vassal) of a running emperor in place",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := control.Request{Cmd: "reload"}
			if len(args) == 1 {
				req.Name = args[0]
			}
			resp, err := control.Call(*controlPath, req, 5*time.Second)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "reloading %d vassal(s)\n", resp.Reloaded)
			return nil
		},
	}
}

func printStatus(w io.Writer, resp *control.Response, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tFAILURES\tMOUNTS\tLAST EXIT")
	// the files each vassal includes or reads (a change to one reloads
	// it), after the table
	var reads []string
	for _, v := range resp.Vassals {
		pid, up := "-", "-"
		if v.PID > 0 {
			pid = fmt.Sprint(v.PID)
			up = now.Sub(v.StartedAt).Round(time.Second).String()
		}
		state := v.State
		if state == emperor.StateBackoff && !v.NextAttempt.IsZero() {
			state += fmt.Sprintf(" (next in %s)", v.NextAttempt.Sub(now).Round(100*time.Millisecond))
		}
		last := v.LastExit
		if v.ConfigError != "" {
			last = "config: " + strings.ReplaceAll(v.ConfigError, "\n", "; ")
		}
		if last == "" {
			last = "-"
		}
		mounts := "-"
		if len(v.Mounts) > 0 {
			var ms []string
			for _, m := range v.Mounts {
				ms = append(ms, fmt.Sprintf("%s=%s:%s %s", m.Prefix, m.Kind, m.Source, m.State))
			}
			mounts = strings.Join(ms, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1f\t%s\t%s\n", v.Name, state, pid, up, v.Restarts, v.Failures, mounts, last)
		if len(v.Reads) > 0 {
			reads = append(reads, fmt.Sprintf("%s reads %s", v.Name, strings.Join(v.Reads, ", ")))
		}
	}
	tw.Flush()
	if len(reads) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(reads, "\n"))
	}
}

func newVersion(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "emperor", version) },
	}
}

func newOptions(stdout io.Writer) *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "options",
		Short: "List every supported option with its meaning, default and difference from uWSGI",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			if markdown {
				fmt.Fprint(stdout, vassalfile.MarkdownReference())
				return
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			for _, o := range vassalfile.Options() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Name, o.Default, o.Doc)
			}
			tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the Markdown table used in docs/options.md")
	return cmd
}

// apiConfig is where the HTTP API listens: its unix socket beside the
// control socket unless --api says otherwise ("none": no API), and TCP
// only with a token.
func apiConfig(path, tcp, tokenFile, controlPath string) (api.Config, error) {
	c := api.Config{Unix: path, TCP: tcp}
	switch path {
	case "":
		c.Unix = filepath.Join(filepath.Dir(controlPath), "api.sock")
	case "none":
		c.Unix = ""
	}
	if tokenFile != "" {
		tok, err := api.ReadToken(tokenFile)
		if err != nil {
			return c, err
		}
		c.Token = tok
	}
	if tcp != "" && c.Token == "" {
		return c, fmt.Errorf("--api-tcp %s needs --api-token-file: anyone who reaches the port could stop every vassal", tcp)
	}
	return c, nil
}
