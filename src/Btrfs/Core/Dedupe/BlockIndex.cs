namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Interop;
    using Btrfs.Kernel;
    using Microsoft.Data.Sqlite;

    /// <summary>One hashed block of a search: its class (filesystem, NOCOW), hash, file, block number, and where it is on disk.</summary>
    internal readonly record struct IndexedBlock(int Class, UInt128 Hash, int File, int Block, BlockKey Where);

    /// <summary>
    /// Every hashed block of a search, for finding the hashes seen twice or more. Held in memory up to a
    /// fixed number of blocks (64 bytes each: UInt128 is 16-byte aligned); beyond that, everything is moved to a temporary SQLite
    /// database on disk (a private one, deleted by SQLite as soon as it is opened: nothing is left behind,
    /// even by a killed process), sorted there with bounded memory, and read back in order. Either way,
    /// <see cref="Repeated"/> yields only the blocks whose hash occurs at least twice in their class,
    /// ordered by class, hash, file and block.
    /// </summary>
    internal sealed class BlockIndex : IDisposable
    {
        private readonly int budget;
        private List<IndexedBlock>? memory = new();
        private SqliteConnection? disk;
        private SqliteCommand? insert;
        private SqliteTransaction? batch;

        /// <summary>An index that keeps up to <paramref name="memoryBlocks"/> blocks in memory.</summary>
        internal BlockIndex(int memoryBlocks) => budget = Math.Max(1, memoryBlocks);

        /// <summary>Blocks added.</summary>
        internal long Count { get; private set; }

        /// <summary>The blocks went to disk (the in-memory budget was outgrown).</summary>
        internal bool Spilled => disk is not null;

        internal void Add(in IndexedBlock block)
        {
            try
            {
                AddBlock(block);
            }
            catch (SqliteException ex)
            {
                throw Failed(ex);
            }
        }

        private void AddBlock(in IndexedBlock block)
        {
            Count++;
            if (memory is not null)
            {
                if (memory.Count == memory.Capacity && memory.Capacity < budget + 1)
                {
                    memory.Capacity = Math.Min(Math.Max(16, memory.Capacity * 2), budget + 1); // never past the budget
                }

                memory.Add(block);
                if (memory.Count > budget)
                {
                    Spill();
                }

                return;
            }

            Insert(block);
        }

        /// <summary>The blocks whose hash occurs twice or more within their class, by class, hash, file and block.</summary>
        internal IEnumerable<IndexedBlock> Repeated()
        {
            IEnumerable<IndexedBlock> sorted;
            if (memory is not null)
            {
                memory.Sort(static (x, y) => x.Class != y.Class ? x.Class.CompareTo(y.Class) : x.Hash != y.Hash ? x.Hash.CompareTo(y.Hash) : x.File != y.File ? x.File.CompareTo(y.File) : x.Block.CompareTo(y.Block));
                sorted = memory;
            }
            else
            {
                sorted = Checked(FromDisk());
            }

            // Runs of equal (class, hash): only runs of two or more are duplicates.
            var run = new List<IndexedBlock>();
            foreach (IndexedBlock b in sorted)
            {
                if (run.Count > 0 && (run[0].Class != b.Class || run[0].Hash != b.Hash))
                {
                    if (run.Count >= 2)
                    {
                        foreach (IndexedBlock r in run)
                        {
                            yield return r;
                        }
                    }

                    run.Clear();
                }

                run.Add(b);
            }

            if (run.Count >= 2)
            {
                foreach (IndexedBlock r in run)
                {
                    yield return r;
                }
            }
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            memory = null;
            batch?.Dispose();
            insert?.Dispose();
            disk?.Dispose();
        }

        /// <summary>
        /// Where SQLite makes its private temporary files, as it chooses (os_unix.c): SQLITE_TMPDIR, TMPDIR (as the process
        /// was started: SQLite reads the C environment, which $env: in pwsh does not change), /var/tmp, /usr/tmp, /tmp, the
        /// first that is a directory this process may create files in (access(2) W_OK and X_OK, as SQLite asks).
        /// </summary>
        private static string TemporaryDirectory(out string? variable)
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            try
            {
                foreach (string pair in System.Text.Encoding.UTF8.GetString(System.IO.File.ReadAllBytes("/proc/self/environ")).Split('\0'))
                {
                    int eq = pair.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0)
                    {
                        env[pair[..eq]] = pair[(eq + 1)..];
                    }
                }
            }
            catch (System.IO.IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }

            foreach ((string? dir, string? name) in new[] { (env.GetValueOrDefault("SQLITE_TMPDIR"), "SQLITE_TMPDIR"), (env.GetValueOrDefault("TMPDIR"), "TMPDIR"), ("/var/tmp", null), ("/usr/tmp", null), ("/tmp", null) })
            {
                if (!string.IsNullOrEmpty(dir) && System.IO.Directory.Exists(dir) && Files.MayCreateIn(dir))
                {
                    variable = name;
                    return dir;
                }
            }

            variable = null;
            return ".";
        }

        /// <summary>
        /// The error for a failure of the temporary index: named by the directory it is in, which no parameter names (before:
        /// SQLite's own exception, "database or disk is full", with no id of this module's and no word of where).
        /// </summary>
        private FileOperationException Failed(SqliteException ex)
        {
            string dir = TemporaryDirectory(out string? variable);
            string what = $"The search's temporary index (a private SQLite database in '{dir}'{(variable is null ? string.Empty : $", from {variable}")}, deleted as it closes; it holds every block hashed, {Count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} so far)";
            string where = variable == "SQLITE_TMPDIR"
                ? "Point SQLITE_TMPDIR (which SQLite takes before TMPDIR) at a directory on a filesystem with room when starting pwsh (env SQLITE_TMPDIR=/path pwsh), or give a larger -BlockSize (fewer blocks)."
                : "Point TMPDIR (or SQLITE_TMPDIR) at a directory on a filesystem with room when starting pwsh (env TMPDIR=/path pwsh), or give a larger -BlockSize (fewer blocks).";
            return (ex.SqliteErrorCode & 0xFF) == 13
                ? new FileOperationException(FileErrorKind.InsufficientSpace, 0, "sqlite", dir, $"{what} cannot grow: that filesystem is full (SQLite error {ex.SqliteErrorCode}). Free space there. {where} Nothing was changed.", ex)
                : new FileOperationException(FileErrorKind.IOError, 0, "sqlite", dir, $"{what} failed: {ex.Message.TrimEnd('.')} (SQLite error {ex.SqliteErrorCode}). {where} Nothing was changed.", ex);
        }

        /// <summary>The blocks read back from disk, a SQLite failure as <see cref="Failed"/>.</summary>
        private IEnumerable<IndexedBlock> Checked(IEnumerable<IndexedBlock> blocks)
        {
            using IEnumerator<IndexedBlock> e = blocks.GetEnumerator();
            while (true)
            {
                try
                {
                    if (!e.MoveNext())
                    {
                        yield break;
                    }
                }
                catch (SqliteException ex)
                {
                    throw Failed(ex);
                }

                yield return e.Current;
            }
        }

        private static long High(UInt128 h) => (long)(ulong)(h >> 64);

        private static long Low(UInt128 h) => (long)(ulong)h;

        private void Spill()
        {
            SqliteLibrary.Initialize();

            // An empty file name: SQLite's private temporary database, on disk, removed when closed.
            disk = new SqliteConnection("Data Source=;Pooling=False");
            disk.Open();
            using (SqliteCommand setup = disk.CreateCommand())
            {
                setup.CommandText = "PRAGMA temp_store = FILE; PRAGMA cache_size = -16384; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
                    + "CREATE TABLE blocks (class INTEGER, h1 INTEGER, h2 INTEGER, file INTEGER, block INTEGER, address INTEGER, offset INTEGER)";
                setup.ExecuteNonQuery();
            }

            batch = disk.BeginTransaction();
            insert = disk.CreateCommand();
            insert.Transaction = batch;
            insert.CommandText = "INSERT INTO blocks VALUES ($c, $h1, $h2, $f, $b, $a, $o)";
            foreach (string p in new[] { "$c", "$h1", "$h2", "$f", "$b", "$a", "$o" })
            {
                insert.Parameters.Add(p, SqliteType.Integer);
            }

            List<IndexedBlock> held = memory!;
            memory = null;
            foreach (IndexedBlock b in held)
            {
                Insert(b);
            }
        }

        private void Insert(in IndexedBlock b)
        {
            SqliteParameterCollection p = insert!.Parameters;
            p[0].Value = b.Class;
            p[1].Value = High(b.Hash);
            p[2].Value = Low(b.Hash);
            p[3].Value = b.File;
            p[4].Value = b.Block;
            p[5].Value = b.Where.Address;
            p[6].Value = b.Where.Offset;
            insert.ExecuteNonQuery();
        }

        private IEnumerable<IndexedBlock> FromDisk()
        {
            batch!.Commit();
            batch.Dispose();
            batch = null;
            insert!.Transaction = null;
            using SqliteCommand query = disk!.CreateCommand();
            query.CommandText = "SELECT class, h1, h2, file, block, address, offset FROM blocks ORDER BY class, h1, h2, file, block";
            using SqliteDataReader r = query.ExecuteReader();
            while (r.Read())
            {
                UInt128 hash = ((UInt128)(ulong)r.GetInt64(1) << 64) | (ulong)r.GetInt64(2);
                yield return new IndexedBlock(r.GetInt32(0), hash, r.GetInt32(3), r.GetInt32(4), new BlockKey(r.GetInt64(5), r.GetInt64(6)));
            }
        }
    }
}
