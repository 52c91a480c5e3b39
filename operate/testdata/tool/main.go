// Command tool is the static test program of package operate's tests. It
// goes into test images as /tool and as /bin/sh, and is the volume helper
// binary the file tests copy into helper containers (what the panelx binary
// does in production).
//
//	tool volume-helper   operate.VolumeHelperMain
//	tool cat1            read one line from stdin, print "got: <line>"
//	tool winsize         read one line, print "size <rows> <cols>" of stdin's terminal
//	tool exit N          exit with code N
//	tool ln TARGET LINK  create a symbolic link (tests plant links in volumes)
//	sh (as /bin/sh)      ignore SIGINT, print "tool-sh ready", then read lines:
//	                     "exit N" exits with N, anything else is echoed as
//	                     "sh: <line>"; end of input exits 0
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/panelx/panelx/operate"
)

func main() {
	if filepath.Base(os.Args[0]) == "sh" {
		os.Exit(shell())
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool volume-helper|cat1|winsize|exit N|ln TARGET LINK")
		os.Exit(2)
	}
	switch os.Args[1] {
	case operate.HelperCommand:
		os.Exit(operate.VolumeHelperMain())
	case "cat1":
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("got: %s\n", strings.TrimRight(line, "\r\n"))
	case "winsize":
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		rows, cols, err := winsize()
		if err != nil {
			fmt.Println("winsize:", err)
			os.Exit(1)
		}
		fmt.Printf("size %d %d\n", rows, cols)
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "ln":
		if err := os.Symlink(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// shell ignores SIGINT like an interactive shell at its prompt, so only
// end of input (ctrl-D) or "exit N" ends it.
func shell() int {
	signal.Ignore(syscall.SIGINT)
	fmt.Println("tool-sh ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if code, ok := strings.CutPrefix(line, "exit "); ok {
			n, _ := strconv.Atoi(code)
			return n
		}
		fmt.Println("sh:", line)
	}
	return 0
}

func winsize() (rows, cols uint16, err error) {
	var ws [4]uint16 // rows, cols, xpixel, ypixel
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0, 0, errno
	}
	return ws[0], ws[1], nil
}
