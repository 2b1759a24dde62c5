package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// --- a tiny database/sql driver: the errors come from database/sql's own code paths

type fakeDriver struct{}
type fakeConn struct{}
type fakeStmt struct{ query string }
type fakeTx struct{}
type fakeRows struct {
	cols []string
	rows [][]driver.Value
}

func (fakeDriver) Open(string) (driver.Conn, error)            { return fakeConn{}, nil }
func (fakeConn) Prepare(q string) (driver.Stmt, error)         { return &fakeStmt{q}, nil }
func (fakeConn) Close() error                                  { return nil }
func (fakeConn) Begin() (driver.Tx, error)                     { return fakeTx{}, nil }
func (fakeTx) Commit() error                                   { return nil }
func (fakeTx) Rollback() error                                 { return nil }
func (s *fakeStmt) Close() error                               { return nil }
func (s *fakeStmt) NumInput() int                              { return -1 }
func (s *fakeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(1), nil }
func (s *fakeStmt) Query([]driver.Value) (driver.Rows, error) {
	switch {
	case strings.Contains(s.query, "badconn"):
		return nil, driver.ErrBadConn
	case strings.Contains(s.query, "nullable"):
		return &fakeRows{cols: []string{"id", "age"}, rows: [][]driver.Value{{int64(1), nil}}}, nil
	}
	return &fakeRows{cols: []string{"id", "name"}}, nil
}
func (r *fakeRows) Columns() []string { return r.cols }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

func init() { sql.Register("fakedb", fakeDriver{}) }

func pgErr(severity, code, msg string) error {
	return &pgconn.PgError{Severity: severity, Code: code, Message: msg}
}

func myErr(number uint16, state, msg string) error {
	e := &mysql.MySQLError{Number: number, Message: msg}
	copy(e.SQLState[:], state)
	return e
}

func dbScenarios(r *recorder) {
	constraint := label("db_constraint", "business", false)
	deadlock := label("db_deadlock", "transient", true)
	serialization := label("db_serialization", "transient", true)
	timeout := label("db_timeout", "transient", true)
	badConn := label("db_bad_conn", "transient", true)
	tooMany := label("db_too_many_conns", "transient", true)
	auth := label("db_auth", "system", false)
	sqlErr := label("db_sql_error", "system", false)
	data := label("db_data", "business", false)

	// PostgreSQL errors as pgx returns them (*pgconn.PgError; the texts are the server's own messages)
	pg := []struct {
		kind, lbl, msg string
		err            error
	}{
		{"db_constraint", constraint, "create user failed", fmt.Errorf("insert user: %w", pgErr("ERROR", "23505", `duplicate key value violates unique constraint "users_email_key"`))},
		{"db_constraint", constraint, "create order failed", fmt.Errorf("insert order: %w", pgErr("ERROR", "23503", `insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey"`))},
		{"db_constraint", constraint, "update user failed", pgErr("ERROR", "23502", `null value in column "email" of relation "users" violates not-null constraint`)},
		{"db_constraint", constraint, "create order failed", fmt.Errorf("save order 9: %w", pgErr("ERROR", "23514", `new row for relation "orders" violates check constraint "orders_amount_check"`))},
		{"db_constraint", constraint, "delete user failed", fmt.Errorf("delete user 3: %w", pgErr("ERROR", "23503", `update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders"`))},
		{"db_deadlock", deadlock, "transfer failed", fmt.Errorf("transfer 100 from 1 to 2: %w", pgErr("ERROR", "40P01", "deadlock detected"))},
		{"db_serialization", serialization, "checkout failed", fmt.Errorf("commit checkout: %w", pgErr("ERROR", "40001", "could not serialize access due to concurrent update"))},
		{"db_serialization", serialization, "reserve stock failed", pgErr("ERROR", "40001", "could not serialize access due to read/write dependencies among transactions")},
		{"db_timeout", timeout, "report query failed", fmt.Errorf("monthly revenue: %w", pgErr("ERROR", "57014", "canceling statement due to statement timeout"))},
		{"db_timeout", timeout, "lock order failed", pgErr("ERROR", "55P03", "canceling statement due to lock timeout")},
		{"db_timeout", timeout, "lock order failed", fmt.Errorf("select for update nowait: %w", pgErr("ERROR", "55P03", `could not obtain lock on row in relation "orders"`))},
		{"db_too_many_conns", tooMany, "connect failed", pgErr("FATAL", "53300", "sorry, too many clients already")},
		{"db_too_many_conns", tooMany, "connect failed", fmt.Errorf("open pool: %w", pgErr("FATAL", "53300", "remaining connection slots are reserved for roles with the SUPERUSER attribute"))},
		{"db_bad_conn", badConn, "query failed", fmt.Errorf("list orders: %w", pgErr("FATAL", "57P01", "terminating connection due to administrator command"))},
		{"db_bad_conn", badConn, "query failed", pgErr("FATAL", "08006", "connection to client lost")},
		{"db_auth", auth, "connect failed", fmt.Errorf("connect: %w", pgErr("FATAL", "28P01", `password authentication failed for user "app"`))},
		{"db_sql_error", sqlErr, "query failed", fmt.Errorf("find users: %w", pgErr("ERROR", "42P01", `relation "user" does not exist`))},
		{"db_sql_error", sqlErr, "query failed", pgErr("ERROR", "42703", `column "emial" does not exist`)},
		{"db_sql_error", sqlErr, "query failed", pgErr("ERROR", "42601", `syntax error at or near "FROM"`)},
		{"db_data", data, "update profile failed", fmt.Errorf("update bio: %w", pgErr("ERROR", "22001", "value too long for type character varying(64)"))},
		{"db_data", data, "get order failed", pgErr("ERROR", "22P02", `invalid input syntax for type uuid: "42"`)},
	}
	for _, c := range pg {
		r.emit(c.kind, c.lbl, c.msg, c.err, zap.String("db.system", "postgresql"))
	}

	// MySQL errors as go-sql-driver/mysql returns them (*mysql.MySQLError)
	my := []struct {
		kind, lbl, msg string
		err            error
	}{
		{"db_constraint", constraint, "create user failed", fmt.Errorf("insert user: %w", myErr(1062, "23000", "Duplicate entry 'ann@example.com' for key 'users.email'"))},
		{"db_constraint", constraint, "create order failed", myErr(1452, "23000", "Cannot add or update a child row: a foreign key constraint fails (`shop`.`orders`, CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`))")},
		{"db_constraint", constraint, "delete user failed", fmt.Errorf("delete user 5: %w", myErr(1451, "23000", "Cannot delete or update a parent row: a foreign key constraint fails (`shop`.`orders`, CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`))"))},
		{"db_constraint", constraint, "update user failed", myErr(1048, "23000", "Column 'email' cannot be null")},
		{"db_deadlock", deadlock, "transfer failed", fmt.Errorf("debit account 1: %w", myErr(1213, "40001", "Deadlock found when trying to get lock; try restarting transaction"))},
		{"db_timeout", timeout, "reserve stock failed", myErr(1205, "HY000", "Lock wait timeout exceeded; try restarting transaction")},
		{"db_timeout", timeout, "report query failed", fmt.Errorf("sales report: %w", myErr(3024, "HY000", "Query execution was interrupted, maximum statement execution time exceeded"))},
		{"db_too_many_conns", tooMany, "connect failed", myErr(1040, "08004", "Too many connections")},
		{"db_auth", auth, "connect failed", fmt.Errorf("ping mysql: %w", myErr(1045, "28000", "Access denied for user 'app'@'10.0.0.5' (using password: YES)"))},
		{"db_sql_error", sqlErr, "query failed", myErr(1146, "42S02", "Table 'shop.user' doesn't exist")},
		{"db_sql_error", sqlErr, "query failed", fmt.Errorf("find orders: %w", myErr(1064, "42000", "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'FORM orders' at line 1"))},
		{"db_data", data, "update profile failed", myErr(1406, "22001", "Data too long for column 'name' at row 1")},
		{"db_bad_conn", badConn, "query failed", fmt.Errorf("list carts: %w", myErr(4031, "HY000", "The client was disconnected by the server because of inactivity. See wait_timeout and interactive_timeout for configuring this behavior."))},
	}
	for _, c := range my {
		r.emit(c.kind, c.lbl, c.msg, c.err, zap.String("db.system", "mysql"))
	}

	// database/sql's own errors, through its real code paths
	noRows := label("db_no_rows", "business", false)
	db, _ := sql.Open("fakedb", "")
	var id int
	var name string
	err := db.QueryRow("SELECT id, name FROM users WHERE id = ?", 42).Scan(&id, &name)
	r.emitIf(errors.Is(err, sql.ErrNoRows), "db_no_rows", noRows, "get user failed", fmt.Errorf("get user %d: %w", 42, err))
	err = db.QueryRowContext(context.Background(), "SELECT id, name FROM orders WHERE ref = ?", "A-1").Scan(&id, &name)
	r.emitIf(errors.Is(err, sql.ErrNoRows), "db_no_rows", noRows, "order lookup failed", err)
	r.emit("db_no_rows", noRows, "get user failed", fmt.Errorf("find user by email: %w", pgx.ErrNoRows), zap.String("db.system", "postgresql"))
	_, err = db.Query("SELECT badconn FROM users")
	r.emitIf(errors.Is(err, driver.ErrBadConn), "db_bad_conn", badConn, "query failed", fmt.Errorf("list users: %w", err))
	var age int
	err = db.QueryRow("SELECT id, nullable FROM users WHERE id = ?", 1).Scan(&id, &age)
	r.emit("db_scan", label("db_scan", "system", false), "scan failed", fmt.Errorf("load user 1: %w", err))
	tx, _ := db.Begin()
	_ = tx.Commit()
	err = tx.Rollback()
	r.emitIf(errors.Is(err, sql.ErrTxDone), "db_tx_done", label("db_tx_done", "system", false), "rollback failed", err)
	_ = db.Close()
	err = db.QueryRow("SELECT id, name FROM users WHERE id = ?", 1).Scan(&id, &name)
	r.emitIf(err != nil && strings.Contains(err.Error(), "closed"), "db_closed", label("db_closed", "system", false), "query after shutdown", fmt.Errorf("get user 1: %w", err))

	// real drivers against a database that is down or broken
	refused := label("db_conn_refused", "transient", true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = pgx.Connect(ctx, "postgres://app:secret@"+closedAddr()+"/shop?sslmode=disable")
	cancel()
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "db_conn_refused", refused, "database unavailable", err)
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	_, err = pgx.Connect(ctx, "host=127.0.0.1 port="+portOf(closedAddr())+" user=orders dbname=orders sslmode=disable")
	cancel()
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "db_conn_refused", refused, "startup failed", fmt.Errorf("open database: %w", err))
	for _, port := range []string{"5432", "3306"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			_ = c.Close()
			r.skip("db_conn_refused", "something listens on 127.0.0.1:"+port)
			continue
		}
		if port == "3306" {
			mdb, _ := sql.Open("mysql", "app:secret@tcp(127.0.0.1:3306)/shop?timeout=1s")
			err = mdb.PingContext(context.Background())
			_ = mdb.Close()
			r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "db_conn_refused", refused, "database unavailable", fmt.Errorf("ping: %w", err))
		} else {
			_, err = pgx.Connect(context.Background(), "postgres://app:secret@127.0.0.1:5432/shop")
			r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "db_conn_refused", refused, "database unavailable", err)
		}
	}
	mdb, _ := sql.Open("mysql", "app:secret@tcp("+closedAddr()+")/shop?timeout=1s")
	err = mdb.PingContext(context.Background())
	_ = mdb.Close()
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "db_conn_refused", refused, "database unavailable", fmt.Errorf("ping mysql: %w", err), zap.String("db.system", "mysql"))

	// a server that accepts and hangs up: the drivers' "bad connection" paths
	hangup, stop := serve(func(c net.Conn) { _ = c.Close() })
	defer stop()
	_ = mysql.SetLogger(mysqlNoLog{})
	mdb, _ = sql.Open("mysql", "app:secret@tcp("+hangup+")/shop?timeout=1s")
	err = mdb.PingContext(context.Background())
	_ = mdb.Close()
	r.emitIf(errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn), "db_bad_conn", badConn, "database ping failed", err, zap.String("db.system", "mysql"))
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	_, err = pgx.Connect(ctx, "postgres://app:secret@"+hangup+"/shop?sslmode=disable")
	cancel()
	r.emitIf(err != nil, "db_bad_conn", badConn, "database unavailable", err, zap.String("db.system", "postgresql"))
}

type mysqlNoLog struct{}

func (mysqlNoLog) Print(...any) {}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
