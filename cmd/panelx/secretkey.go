package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/cli"
	"github.com/panelx/panelx/reseal"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// secretKeyFile is the master key file of the embedded backend's data
// directory, generated on its first start.
const secretKeyFile = "secret.key"

// loadKeyring opens the master key file: PANELX_SECRET_KEY_FILE, or with
// the embedded backend <data-dir>/secret.key, created on first start. A
// key file that cannot be read is reported, not fatal: services without
// secrets keep being served and reconciled; those with secrets are held
// back and say why.
func loadKeyring(path string, b *backendFlags, log *zap.Logger) *seal.Keyring {
	if path == "" && b.databaseURL == "" && b.dataDir != "" {
		kr, created, err := seal.EnsureKeyFile(filepath.Join(b.dataDir, secretKeyFile))
		if err != nil {
			log.Error("no master key: secrets and registry credentials cannot be used", zap.Error(err))
			return nil
		}
		if created {
			log.Warn("generated the master key that seals secrets: back it up (without it they cannot be read)", zap.String("file", kr.Path()))
		}
		return kr
	}
	if path == "" {
		log.Warn("no PANELX_SECRET_KEY_FILE: secrets and registry credentials cannot be used (generate a key file with `panelx secrets init-key FILE`; every server sharing the database needs the same one)")
		return nil
	}
	kr, err := seal.LoadKeyring(path)
	if err != nil {
		log.Error("cannot read the master key file: secrets and registry credentials cannot be used until it is fixed; services without secrets run as usual", zap.Error(err))
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the master key file is readable by other users: chmod 600 it", zap.String("file", path), zap.Stringer("mode", fi.Mode().Perm()))
	}
	return kr
}

// checkSealed says loudly what the key file cannot open, and seals
// registry passwords stored in plain text by earlier versions.
func checkSealed(ctx context.Context, st store.Store, kr *seal.Keyring, log *zap.Logger) {
	unknown, err := reseal.UnknownKeys(ctx, st, kr)
	if err != nil {
		log.Warn("check sealed secrets", zap.Error(err))
		return
	}
	for id, n := range unknown {
		log.Error("items are sealed under a master key the key file does not hold: services using them are held back (SecretUnavailable) until the right key file is back",
			zap.String("keyId", id), zap.Int("items", n), zap.Strings("keyFileHolds", kr.IDs()))
	}
	if kr == nil {
		return
	}
	rep, err := reseal.Rewrap(ctx, st, kr)
	if err != nil {
		log.Warn("seal stored registry passwords", zap.Error(err))
	} else if rep.RegistryCredentials > 0 || rep.Secrets > 0 || rep.CertificateKeys > 0 {
		log.Info("sealed what was not under the active master key", zap.Int("registryCredentials", rep.RegistryCredentials),
			zap.Int("secrets", rep.Secrets), zap.Int("certificateKeys", rep.CertificateKeys))
	}
}

func newSecretsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the master key that seals secrets and registry passwords",
		Long: `Secrets and registry passwords are stored sealed (AES-256-GCM, each under its
own data key, the data keys under a master key). The master key lives in a
file that never enters the database: PANELX_SECRET_KEY_FILE, or, with the
embedded database, <data-dir>/secret.key (generated on first start).

Every server sharing a PostgreSQL database needs the same key file. Back it
up: without it the secrets cannot be read. To rotate it without downtime, call
` + "`panelx secrets rotate-key`" + ` (a client command, for server administrators).`,
	}
	cmd.AddCommand(newInitKeyCmd(), cli.SecretsRotateKeyCmd())
	_ = g
	return cmd
}

func newInitKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init-key FILE",
		Short: "Write a new master key file (mode 0600); refuses to overwrite one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: a new key would make what it seals unreadable (rotate with `panelx secrets rotate-key`)", path)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			kr, created, err := seal.EnsureKeyFile(path)
			if err != nil {
				return err
			}
			if !created {
				return fmt.Errorf("%s appeared meanwhile; not overwritten", path)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote master key %s to %s\nset PANELX_SECRET_KEY_FILE=%s on every server sharing the database, and back the file up\n",
				strings.Join(kr.IDs(), ""), path, path)
			return err
		},
	}
}
