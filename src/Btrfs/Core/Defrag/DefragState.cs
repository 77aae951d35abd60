namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using Btrfs.Kernel;
    using Microsoft.Data.Sqlite;

    /// <summary>
    /// Invoke-BtrfsDefrag's state file (-StatePath): where a scheduled run over a tree stopped, so that
    /// the next one resumes. A SQLite database (<see cref="ModuleDatabase"/>) with three tables:
    /// <c>trees</c> (one row per filesystem and tree root: the pass it is in, passes completed) and
    /// <c>files</c> (one row per file done in a pass: filesystem, inode, the pass, its size, modification
    /// and change times after the work, what was done), and <c>rates</c> (per filesystem, the bytes the
    /// last run rewrote unthrottled and the seconds it took: the rate the next run judges by, from its
    /// start, what fits in its budget). A file done in the current pass whose inode,
    /// size and times are unchanged is not measured again; a changed one is. Every row is committed as
    /// soon as it is written, so Ctrl+C or kill -9 leave a file that opens with everything done before.
    /// </summary>
    internal sealed class DefragState : IDisposable
    {
        /// <summary>PRAGMA application_id of a state file: "BtrD".</summary>
        internal const int ApplicationId = 0x42747244;

        private static readonly ModuleDatabaseKind Kind = new(
            "state file",
            "-StatePath",
            ApplicationId,
            1,
            "CREATE TABLE trees (fs INTEGER NOT NULL, root TEXT NOT NULL, pass INTEGER NOT NULL, passes_completed INTEGER NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (fs, root)); "
                + "CREATE TABLE files (fs INTEGER NOT NULL, inode INTEGER NOT NULL, pass INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, "
                + "path TEXT NOT NULL, outcome TEXT NOT NULL, extents_before INTEGER NOT NULL, extents_after INTEGER NOT NULL, done_at TEXT NOT NULL, PRIMARY KEY (fs, inode)) WITHOUT ROWID",
            "files",
            new[] { "fs", "inode", "pass", "size", "mtime_ns", "ctime_ns", "path", "outcome", "extents_before", "extents_after", "done_at" })
        {
            CheckWhole = true,
            AlsoRequired = new[] { ("trees", new[] { "fs", "root", "pass", "passes_completed", "updated" }) },
        };

        private readonly SqliteConnection connection;
        private bool criteriaAvailable;
        private readonly OpenFile lockHolder;
        private bool ratesAvailable;

        private DefragState(string path, SqliteConnection connection, OpenFile lockHolder)
        {
            Path = path;
            this.connection = connection;
            this.lockHolder = lockHolder;
        }

        /// <summary>The file's path.</summary>
        internal string Path { get; }

        /// <summary>The inodes of the state file and its companions (-wal, -shm): a run leaves them alone, since they change while it runs.</summary>
        internal HashSet<(uint, uint, ulong)> OwnFiles { get; } = new();

        /// <summary>
        /// Opens (or creates) the state file; refusals as for <see cref="ModuleDatabase.Open"/>. One run at a
        /// time: the file is locked (flock, held until disposed; SQLite's own locks are fcntl locks, apart),
        /// and a file another run holds is refused (InUse), so two runs never redo each other's work.
        /// </summary>
        internal static DefragState Open(string path)
        {
            SqliteConnection connection = ModuleDatabase.Open(path, Kind, out string opened);
            OpenFile? holder = null;
            try
            {
                holder = OpenFile.Open(opened, OpenOptions.NoFollow);
                if (!Locks.TryLockExclusive(holder.Handle))
                {
                    throw new FileOperationException(FileErrorKind.InUse, 0, "flock", path, $"The state file '{path}' is in use by another Invoke-BtrfsDefrag run. Wait for it to finish, or give another -StatePath.");
                }

                var state = new DefragState(path, connection, holder);
                state.CreateRates();
                state.AddCriteria();
                foreach (string own in new[] { opened, opened + "-wal", opened + "-shm", opened + "-journal" })
                {
                    if (FileStatus.OfPath(own, followLinks: false) is FileStatus st)
                    {
                        state.OwnFiles.Add((st.DevMajor, st.DevMinor, st.Inode));
                    }
                }

                return state;
            }
            catch
            {
                holder?.Dispose();
                connection.Dispose();
                throw;
            }
        }

        /// <summary>Whether the file records trees, none of them on the filesystem <paramref name="fs"/> (it was written for another filesystem).</summary>
        internal bool OnlyOtherFileSystems(ulong fs)
        {
            // As the file was when this run opened it: a tree this run began on another filesystem (several
            // trees given) does not make the file foreign for the next one.
            knownFileSystems ??= Guard(() =>
            {
                var known = new HashSet<long>();
                using SqliteCommand c = Command("SELECT DISTINCT fs FROM trees");
                using SqliteDataReader r = c.ExecuteReader();
                while (r.Read())
                {
                    known.Add(r.GetInt64(0));
                }

                return known;
            });
            if (knownFileSystems.Count == 0 || knownFileSystems.Contains((long)fs))
            {
                return false;
            }

            // Nor where files of this filesystem are recorded: those are used (IsDone) whatever the trees say (a hostile
            // test: with the trees' filesystem edited, the warning said nothing applied, and two files were skipped as done).
            return Guard(() =>
            {
                using SqliteCommand c = Command("SELECT EXISTS (SELECT 1 FROM files WHERE fs = $fs)", ("$fs", (long)fs));
                return Convert.ToInt64(c.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0;
            });
        }

        private HashSet<long>? knownFileSystems;

        /// <summary>The pass the tree at <paramref name="root"/> on <paramref name="fs"/> is in (1 for a tree not seen before), and how many it completed.</summary>
        internal (int Pass, int Completed) PassOf(ulong fs, string root) => Guard(() =>
        {
            using SqliteCommand c = Command("SELECT pass, passes_completed FROM trees WHERE fs = $fs AND root = $root", ("$fs", (long)fs), ("$root", root));
            using SqliteDataReader r = c.ExecuteReader();
            if (!r.Read())
            {
                return (1, 0);
            }

            // A row no run could have written (edited by hand: a pass below 1, a number past int): the tree starts
            // again at pass 1 (Begin overwrites that row), not trusted. (Before: OverflowException, or a pass of -4.)
            long pass = r.IsDBNull(0) ? 0 : r.GetInt64(0), completed = r.IsDBNull(1) ? -1 : r.GetInt64(1);
            return pass is >= 1 and <= MostPasses && completed is >= 0 and <= MostPasses ? ((int)pass, (int)completed) : (1, 0);
        });

        /// <summary>
        /// More passes than any run could have recorded (one a second for 30 years), and far enough from int's end that
        /// a run's -Passes on top of it never overflows. (Before: a pass of 2147483646, edited in, was trusted and its
        /// run counted on to -2147483648; a hostile review.)
        /// </summary>
        internal const int MostPasses = 999_999_999;

        /// <summary>Records that the tree finished <paramref name="pass"/>: the next run starts the one after.</summary>
        internal void CompletePass(ulong fs, string root, int pass) => Guard(() =>
        {

            using SqliteCommand c = Command(
                "INSERT INTO trees (fs, root, pass, passes_completed, updated) VALUES ($fs, $root, $next, 1, $at) "
                    + "ON CONFLICT (fs, root) DO UPDATE SET pass = $next, passes_completed = passes_completed + 1, updated = $at",
                ("$fs", (long)fs),
                ("$root", root),
                ("$next", pass + 1),
                ("$at", Now()));
            return c.ExecuteNonQuery();
        });

        /// <summary>Records that the tree is in <paramref name="pass"/> (a tree seen for the first time).</summary>
        internal void Begin(ulong fs, string root, int pass) => Guard(() =>
        {

            using SqliteCommand c = Command(
                "INSERT INTO trees (fs, root, pass, passes_completed, updated) VALUES ($fs, $root, $pass, 0, $at) ON CONFLICT (fs, root) DO UPDATE SET pass = $pass, passes_completed = 0, updated = $at "
                    + "WHERE NOT (pass BETWEEN 1 AND $most AND passes_completed BETWEEN 0 AND $most)", // a row no run wrote (see PassOf): started again
                ("$most", MostPasses),
                ("$fs", (long)fs),
                ("$root", root),
                ("$pass", pass),
                ("$at", Now()));
            return c.ExecuteNonQuery();
        });

        /// <summary>
        /// The rewrite rate recorded for <paramref name="fs"/> (bytes per second; null when none). The table is
        /// added to a file of an earlier version, which still reads it; where it cannot be (a full disk), or was
        /// changed by someone, there are no recorded rates.
        /// </summary>
        internal double? RateOf(ulong fs)
        {
            if (!ratesAvailable)
            {
                return null;
            }

            try
            {
                return Guard(() =>
                {
                    using SqliteCommand c = Command("SELECT bytes, seconds FROM rates WHERE fs = $fs", ("$fs", (long)fs));
                    using SqliteDataReader r = c.ExecuteReader();
                    // A rate no run could have measured (edited by hand: 1 byte in 1e308 s) is no rate: a budget
                    // judged by it overflowed TimeSpan and ended the run.
                    double? rate = r.Read() && !r.IsDBNull(0) && !r.IsDBNull(1) && r.GetDouble(1) > 0 && r.GetInt64(0) > 0 ? r.GetInt64(0) / r.GetDouble(1) : null;
                    return rate is >= MinimumRate and <= MaximumRate ? rate : null;
                });
            }
            catch (Exception ex) when (ex is FileOperationException or InvalidCastException or FormatException)
            {
                ratesAvailable = false; // a table someone changed: judged without recorded rates, like a file without them
                return null;
            }
        }

        /// <summary>The rewrite rates (bytes per second) a recorded one may have: from 1 KiB/s to 1 TiB/s.</summary>
        private const double MinimumRate = 1024, MaximumRate = 1024.0 * 1024 * 1024 * 1024;

        /// <summary>Records the bytes rewritten on <paramref name="fs"/> in <paramref name="seconds"/> (replacing what an earlier run recorded).</summary>
        internal void RecordRate(ulong fs, long bytes, double seconds)
        {
            if (!ratesAvailable)
            {
                return;
            }

            try
            {
                Guard(() =>
                {
                    using SqliteCommand c = Command(
                        "INSERT INTO rates (fs, bytes, seconds, updated) VALUES ($fs, $bytes, $seconds, $at) "
                            + "ON CONFLICT (fs) DO UPDATE SET bytes = $bytes, seconds = $seconds, updated = $at",
                        ("$fs", (long)fs),
                        ("$bytes", bytes),
                        ("$seconds", seconds),
                        ("$at", Now()));
                    return c.ExecuteNonQuery();
                });
            }
            catch (FileOperationException)
            {
                ratesAvailable = false; // not recorded (a full disk stops the file's recording too, and says so); the run goes on
            }
        }

        /// <summary>
        /// Whether the file <paramref name="st"/> was done in <paramref name="pass"/> under the same
        /// <paramref name="criteria"/> (or by a version that did not record them) and has not changed since. With
        /// <paramref name="rewrittenInAnyPass"/> (-Compress: every file is worth it in every pass), one rewritten
        /// (not left alone) under the same criteria in an earlier pass counts too: recompressing it again changes nothing.
        /// So does one rewritten under the same criteria in one of the <see cref="NoImprovementPasses"/> passes before that
        /// came out no better (<see cref="NoImprovementOutcome"/>): rewriting it again so soon would find the same free space.
        /// </summary>
        internal bool IsDone(ulong fs, in FileStatus st, int pass, string criteria, bool rewrittenInAnyPass = false)
        {
            FileStatus s = st;
            return Guard(() =>
            {
                // One prepared statement per kind of question, its parameters set anew for each file: a resumed run asks
                // for every file it meets (before: the statement was made and prepared again each time, and a run whose
                // budget was short spent its measuring half asking, 52,000 files a second; a hostile review).
                ref SqliteCommand? c = ref rewrittenInAnyPass ? ref isDoneSticky : ref isDone;
                if (c is null)
                {
                    string passes = !criteriaAvailable ? "pass = $pass"
                        : rewrittenInAnyPass ? "(pass = $pass OR (pass < $pass AND criteria = $criteria AND outcome NOT LIKE 'skipped:%'))"
                        : "(pass = $pass OR (pass < $pass AND pass >= $pass - " + NoImprovementPasses + " AND criteria = $criteria AND outcome LIKE '" + NoImprovementOutcome + "%'))";
                    c = Command(
                        "SELECT count(*) FROM files WHERE fs = $fs AND inode = $inode AND " + passes + " AND size = $size AND mtime_ns = $mtime AND ctime_ns = $ctime"
                            + (criteriaAvailable ? " AND (criteria IS NULL OR criteria = $criteria)" : string.Empty),
                        ("$criteria", string.Empty),
                        ("$fs", 0L),
                        ("$inode", 0L),
                        ("$pass", 0),
                        ("$size", 0L),
                        ("$mtime", 0L),
                        ("$ctime", 0L));
                    c.Prepare();
                }

                c.Parameters["$criteria"].Value = criteria;
                c.Parameters["$fs"].Value = (long)fs;
                c.Parameters["$inode"].Value = (long)s.Inode;
                c.Parameters["$pass"].Value = pass;
                c.Parameters["$size"].Value = s.Size;
                c.Parameters["$mtime"].Value = Nanoseconds(s.ModifyTime);
                c.Parameters["$ctime"].Value = Nanoseconds(s.ChangeTime);
                return Convert.ToInt64(c.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
            });
        }

        private SqliteCommand? isDone, isDoneSticky;

        /// <summary>How the outcome of a rewrite that left the file with no fewer extents or fragments begins.</summary>
        internal const string NoImprovementOutcome = "no improvement: ";

        /// <summary>
        /// For how many later passes such a file is left alone while unchanged: a week of nightly runs. Fragmented free
        /// space passes (files are deleted, a balance gathers it), so it is tried again after that (a review: left alone
        /// for good, a read-mostly image would never be tried again).
        /// </summary>
        internal const int NoImprovementPasses = 7;

        /// <summary>Records the file (as it is now, <paramref name="st"/>) as done in <paramref name="pass"/>, committed at once.</summary>
        internal void MarkDone(ulong fs, in FileStatus st, int pass, string path, string outcome, long extentsBefore, long extentsAfter, string criteria)
        {
            FileStatus s = st;
            Guard(() =>
            {

                using SqliteCommand c = Command(
                    "INSERT OR REPLACE INTO files (fs, inode, pass, size, mtime_ns, ctime_ns, path, outcome, extents_before, extents_after, done_at" + (criteriaAvailable ? ", criteria" : string.Empty) + ") "
                        + "VALUES ($fs, $inode, $pass, $size, $mtime, $ctime, $path, $outcome, $before, $after, $at" + (criteriaAvailable ? ", $criteria" : string.Empty) + ")",
                    ("$criteria", criteria),
                    ("$fs", (long)fs),
                    ("$inode", (long)s.Inode),
                    ("$pass", pass),
                    ("$size", s.Size),
                    ("$mtime", Nanoseconds(s.ModifyTime)),
                    ("$ctime", Nanoseconds(s.ChangeTime)),
                    ("$path", path),
                    ("$outcome", outcome),
                    ("$before", extentsBefore),
                    ("$after", extentsAfter),
                    ("$at", Now()));
                return c.ExecuteNonQuery();
            });
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            isDone?.Dispose();
            isDoneSticky?.Dispose();
            connection.Dispose();
            lockHolder.Dispose();
        }

        /// <summary>
        /// The files table's criteria column (what decided a file was worth it or left alone; new in this
        /// version: files of earlier versions get it, their rows without criteria, and an earlier version
        /// ignores it).
        /// </summary>
        private void AddCriteria()
        {
            try
            {
                criteriaAvailable = Guard(() => ModuleDatabase.Scalar(connection, "SELECT count(*) FROM pragma_table_info('files') WHERE name = 'criteria'")) > 0;
                if (!criteriaAvailable)
                {
                    Guard(() =>
                    {
                        using SqliteCommand c = Command("ALTER TABLE files ADD COLUMN criteria TEXT");
                        return c.ExecuteNonQuery();
                    });
                    criteriaAvailable = true;
                }
            }
            catch (FileOperationException)
            {
                // A full disk, or a file that cannot grow: the run goes on, files recorded without their criteria.
            }
        }

        /// <summary>The rates table (new in this version; files of earlier versions get it, and an earlier version ignores it).</summary>
        private void CreateRates()
        {
            try
            {
                Guard(() =>
                {
                    using SqliteCommand c = Command("CREATE TABLE IF NOT EXISTS rates (fs INTEGER NOT NULL PRIMARY KEY, bytes INTEGER NOT NULL, seconds REAL NOT NULL, updated TEXT NOT NULL)");
                    return c.ExecuteNonQuery();
                });
                ratesAvailable = true;
            }
            catch (FileOperationException)
            {
                // A full disk, or a file that cannot grow: the run goes on without recorded rates.
            }
        }

        private static long Nanoseconds(FileTime t) => (t.Seconds * 1_000_000_000L) + t.Nanoseconds;

        private static string Now() => DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture);

        private long Scalar(string sql, params (string Name, object Value)[] parameters)
        {
            using SqliteCommand c = Command(sql, parameters);
            return Convert.ToInt64(c.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        private SqliteCommand Command(string sql, params (string Name, object Value)[] parameters)
        {
            SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            foreach ((string name, object value) in parameters)
            {
                c.Parameters.AddWithValue(name, value);
            }

            return c;
        }

        private T Guard<T>(Func<T> action) => ModuleDatabase.Guard(Path, Kind, action);
    }
}
