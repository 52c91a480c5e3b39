package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/panelx/panelx/client"
)

func newLogsCmd(conn *connection) *cobra.Command {
	var (
		project    string
		follow     bool
		tail       int
		since      string
		timestamps bool
		replica    int
		build      bool
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE -p PROJECT",
		Short: "Print the logs of a service's replicas",
		Long: `Print the logs of all replicas of a service, merged by time, each line
tagged with its replica: "[0] line" for standard output, "[0 stderr] line" for
standard error, "[0 system] …" for notes from PanelX (a replacement container
picked up while following). With -f new lines follow until Ctrl-C. With --build,
the log of the service's newest build instead (spec.build; credentials redacted).`,
		Example: `  panelx logs web -p shop
  panelx logs web -p shop -f --tail 20
  panelx logs web -p shop --since 10m --timestamps --replica 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			if build {
				err := c.BuildLogs(cmd.Context(), project, args[0], follow, cmd.OutOrStdout())
				if err != nil && cmd.Context().Err() != nil {
					return nil
				}
				return err
			}
			opts := client.LogsOptions{Follow: follow, Since: since}
			if cmd.Flags().Changed("tail") && tail >= 0 {
				opts.Tail = &tail
			}
			if cmd.Flags().Changed("replica") {
				if replica < 0 {
					return errors.New("--replica: a replica index: 0, 1, …")
				}
				opts.Replica = &replica
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			err = c.Logs(cmd.Context(), project, args[0], opts, func(l client.LogLine) error {
				fmt.Fprintln(out, formatLogLine(l, timestamps))
				if follow {
					return out.Flush() // lines show as they come
				}
				return nil
			})
			if err != nil && cmd.Context().Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", -1, "past lines per replica container (-1: all)")
	cmd.Flags().StringVar(&since, "since", "", "only lines since a duration ago (10m) or a time (RFC 3339)")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "start each line with its time")
	cmd.Flags().IntVar(&replica, "replica", 0, "only this replica index")
	cmd.Flags().BoolVar(&build, "build", false, "the log of the service's newest build (spec.build) instead")
	return cmd
}

// formatLogLine renders "[replica] text", marking stderr and system lines.
func formatLogLine(l client.LogLine, timestamps bool) string {
	tag := "-"
	if l.Replica >= 0 {
		tag = strconv.Itoa(l.Replica)
	}
	if l.Stream != "stdout" {
		tag += " " + l.Stream
	}
	line := "[" + tag + "] " + l.Text
	if timestamps {
		line = l.Time.UTC().Format(time.RFC3339Nano) + " " + line
	}
	return line
}

func newExecCmd(conn *connection) *cobra.Command {
	var (
		project     string
		interactive bool
		tty         bool
		replica     int
	)
	cmd := &cobra.Command{
		Use:   "exec SERVICE -p PROJECT [-it] [--replica N] [-- CMD ARGS...]",
		Short: "Run a command in a running replica of a service",
		Long: `Run a command in a running container of a service, like docker exec, through
the server's terminal WebSocket (owners, admins and editors only; the session is
recorded as an event). The command is an argument vector, run as is: no shell
on the server parses it. Without a command, a shell of the image runs
(/bin/bash, /bin/sh or busybox sh).

The command always runs on a terminal. -i sends standard input; -t also puts
this terminal into raw mode (keys like Ctrl-C go to the command) and follows
its size. Without -t, the terminal's CRLF line ends are printed as LF; without
-i the command reads end-of-input at once. The exit code is the command's.

Docker cannot kill an exec'd process: when the session ends early, PanelX types
Ctrl-C and Ctrl-D into its terminal; a program ignoring both keeps running.`,
		Example: `  panelx exec web -p shop -it
  panelx exec web -p shop -- /app/migrate --dry-run
  echo "SELECT 1;" | panelx exec db -p shop -i -- psql -U app`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			if replica < 0 {
				return errors.New("--replica: a replica index: 0, 1, …")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			return runExec(cmd.Context(), c, execRun{project: project, service: args[0], cmd: args[1:], replica: replica,
				interactive: interactive, tty: tty, stdin: cmd.InOrStdin(), stdout: cmd.OutOrStdout()})
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "send standard input to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "raw terminal mode and terminal size (with -i on a terminal)")
	cmd.Flags().IntVar(&replica, "replica", 0, "the replica index")
	return cmd
}

type execRun struct {
	project, service string
	cmd              []string
	replica          int
	interactive, tty bool
	stdin            io.Reader
	stdout           io.Writer
}

// Terminal control characters.
const (
	ctrlD = 0x04 // end of input at the start of a line of a terminal
)

func runExec(ctx context.Context, c *client.Client, r execRun) error {
	opts := client.ExecOptions{Cmd: r.cmd, Replica: r.replica}
	inFile, inIsTerm := r.stdin.(*os.File)
	inIsTerm = inIsTerm && term.IsTerminal(int(inFile.Fd()))
	if r.tty {
		if cols, rows, ok := terminalSize(r.stdin, r.stdout); ok {
			opts.Rows, opts.Cols = rows, cols
		}
	}
	sess, err := c.Exec(ctx, r.project, r.service, opts)
	if err != nil {
		return err
	}
	defer sess.Close()
	if r.tty && r.interactive && inIsTerm {
		state, err := term.MakeRaw(int(inFile.Fd()))
		if err != nil {
			return fmt.Errorf("raw terminal mode: %w", err)
		}
		defer term.Restore(int(inFile.Fd()), state) //nolint:errcheck // best effort on the way out
	}
	if r.tty {
		stop := followResize(ctx, sess, r.stdin, r.stdout)
		defer stop()
	}
	if r.interactive {
		go sendInput(sess, r.stdin)
	} else {
		_, _ = sess.Write([]byte{ctrlD})
	}
	out := r.stdout
	if !r.tty {
		out = &crlfWriter{w: r.stdout}
	}
	code, err := sess.Run(ctx, out)
	if f, ok := out.(*crlfWriter); ok {
		f.flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: 130} // interrupted, like a shell reports it
		}
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// sendInput copies stdin to the session; at its end it types what ends a
// terminal's input: ctrl-D at the start of a line (twice after a partial
// line: the first only hands the line over).
func sendInput(sess *client.ExecSession, in io.Reader) {
	buf := make([]byte, 32<<10)
	last := byte('\n')
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := sess.Write(buf[:n]); werr != nil {
				return
			}
			last = buf[n-1]
		}
		if err != nil {
			eof := []byte{ctrlD}
			if last != '\n' && last != '\r' {
				eof = append(eof, ctrlD)
			}
			_, _ = sess.Write(eof)
			return
		}
	}
}

// terminalSize is the size of the first of in and out that is a terminal.
func terminalSize(in io.Reader, out io.Writer) (cols, rows uint, ok bool) {
	for _, x := range []any{in, out} {
		if f, isFile := x.(*os.File); isFile && term.IsTerminal(int(f.Fd())) {
			if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
				return uint(w), uint(h), true
			}
		}
	}
	return 0, 0, false
}

// crlfWriter turns a terminal's CRLF line ends into LF.
type crlfWriter struct {
	w  io.Writer
	cr bool // the last chunk ended with CR
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+1)
	for _, b := range p {
		if c.cr && b != '\n' {
			out = append(out, '\r')
		}
		c.cr = b == '\r'
		if !c.cr {
			out = append(out, b)
		}
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *crlfWriter) flush() {
	if c.cr {
		_, _ = c.w.Write([]byte{'\r'})
		c.cr = false
	}
}
