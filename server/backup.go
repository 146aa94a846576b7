package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// backup copies a SQLite database to a new file while the server keeps
// running. MySQL is backed up with mysqldump, whose command line it prints.
func backup(ctx context.Context, url, to string, stdout io.Writer) error {
	db, err := models.Open(ctx, url, models.DBOptions{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if db.Dialector.Name() != "sqlite" {
		return fmt.Errorf("admin backup copies SQLite databases; for MySQL/MariaDB run\n  %s > %s", mysqldumpCommand(db.Dialector), to)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	start := time.Now()
	if err := models.BackupSQLite(ctx, db, to); err != nil {
		return fmt.Errorf("admin backup: %w", err)
	}
	info, err := os.Stat(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up to %s (%d bytes in %s); restore by starting crumbs with CRUMBS_DATABASE_URL=sqlite:%s\n",
		to, info.Size(), time.Since(start).Round(time.Millisecond), to)
	return nil
}

// mysqldumpCommand is the documented backup command for a MySQL database
// (mysqldump asks for the password, so it never shows in the process list).
func mysqldumpCommand(d gorm.Dialector) string {
	cmd := "mysqldump --single-transaction --hex-blob --default-character-set=utf8mb4"
	md, ok := d.(*mysql.Dialector)
	if !ok || md.DSNConfig == nil {
		return cmd + " DBNAME"
	}
	cfg := md.DSNConfig
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host, port = cfg.Addr, "3306"
	}
	cmd += fmt.Sprintf(" -h %s -P %s -u %s", host, port, cfg.User)
	if cfg.Passwd != "" {
		cmd += " -p"
	}
	return cmd + " " + cfg.DBName
}
