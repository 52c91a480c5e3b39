// Package logging builds PanelX's zap logger.
package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted by New.
const (
	FormatAuto    = "auto" // console in a terminal, JSON otherwise
	FormatJSON    = "json"
	FormatConsole = "console"
)

// New returns a logger writing to stderr at the level (debug, info, warn,
// error) in the format (auto, json, console).
func New(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(strings.ToLower(level))
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "", FormatAuto:
		format = FormatJSON
		if isTerminal(os.Stderr) {
			format = FormatConsole
		}
	case FormatJSON, FormatConsole:
	default:
		return nil, fmt.Errorf("log format %q: want json, console or auto", format)
	}
	var cfg zap.Config
	if format == FormatJSON {
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "time"
		cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(os.Stderr) {
			cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
