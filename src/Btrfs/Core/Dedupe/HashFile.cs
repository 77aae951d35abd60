namespace Btrfs.Core
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.IO.Hashing;
    using Btrfs.Kernel;
    using Microsoft.Data.Sqlite;

    /// <summary>What names one file's contents in a hash file: a file whose every field is unchanged has the same bytes.</summary>
    /// <param name="FileSystemId">statfs f_fsid (btrfs: the filesystem and the subvolume; ext4: its UUID; xfs: its device).</param>
    internal readonly record struct HashFileKey(ulong FileSystemId, ulong Inode, long Size, FileTime ModifyTime, FileTime ChangeTime)
    {
        internal static HashFileKey Of(ulong fileSystemId, in FileStatus st) => new(fileSystemId, st.Inode, st.Size, st.ModifyTime, st.ChangeTime);
    }

    /// <summary>
    /// Find-BtrfsDuplicate's hash file: a SQLite database (the user's, queryable) holding every file's block
    /// hashes under the key of <see cref="HashFileKey"/>, so that a later search does not read a file
    /// whose inode, size, modification and change times are unchanged. One table, <c>files</c>: the key,
    /// the block size, the path last seen, when it was hashed, the hashes (16 bytes per block, XxHash128
    /// little endian: of the block's bytes, or on btrfs of its sectors' checksums, <see cref="SectorChecksums"/>), one byte per block (1: hashed; 2: zeros written as data; 0: a hole, unwritten, inline or a block only partly data), and a checksum
    /// (XxHash64) over all of them, so that a damaged row is read again rather than trusted.
    /// Each file's row is one transaction of its own, committed as soon as the file is hashed (WAL mode,
    /// synchronous NORMAL: no fsync per file): Ctrl+C or a process killed mid-run leaves a database that
    /// opens with every file hashed before.
    /// The file is created 0600, exclusively, never through a symbolic link.
    /// </summary>
    internal sealed class HashFile : IDisposable
    {
        /// <summary>PRAGMA application_id of a hash file: "BtrH".</summary>
        internal const int ApplicationId = 0x42747248;

        private static readonly ModuleDatabaseKind Kind = new(
            "hash file",
            "-HashFile",
            ApplicationId,
            1,
            "CREATE TABLE files (fs INTEGER NOT NULL, inode INTEGER NOT NULL, block_size INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, "
                + "path TEXT NOT NULL, hashed_at TEXT NOT NULL, hashes BLOB NOT NULL, present BLOB NOT NULL, checksum INTEGER NOT NULL, PRIMARY KEY (fs, inode, block_size)) WITHOUT ROWID",
            "files",
            new[] { "fs", "inode", "block_size", "size", "mtime_ns", "ctime_ns", "path", "hashed_at", "hashes", "present", "checksum" });

        private readonly SqliteConnection connection;
        private readonly SqliteCommand select;
        private readonly SqliteCommand upsert;

        private HashFile(string path, SqliteConnection connection)
        {
            Path = path;
            this.connection = connection;
            select = Command("SELECT block_size, hashes, present, checksum FROM files WHERE fs = $fs AND inode = $inode AND block_size = $bs AND size = $size AND mtime_ns = $mtime AND ctime_ns = $ctime");
            upsert = Command("INSERT OR REPLACE INTO files (fs, inode, block_size, size, mtime_ns, ctime_ns, path, hashed_at, hashes, present, checksum) VALUES ($fs, $inode, $bs, $size, $mtime, $ctime, $path, $at, $hashes, $present, $checksum)");
            foreach (string name in new[] { "$fs", "$inode", "$bs", "$size", "$mtime", "$ctime" })
            {
                select.Parameters.Add(name, SqliteType.Integer);
                upsert.Parameters.Add(name, SqliteType.Integer);
            }

            upsert.Parameters.Add("$path", SqliteType.Text);
            upsert.Parameters.Add("$at", SqliteType.Text);
            upsert.Parameters.Add("$hashes", SqliteType.Blob);
            upsert.Parameters.Add("$present", SqliteType.Blob);
            upsert.Parameters.Add("$checksum", SqliteType.Integer);
        }

        /// <summary>The database's path.</summary>
        internal string Path { get; }

        /// <summary>The inodes of the database and its companions (-wal, -shm): a search leaves them out, since they change while it runs.</summary>
        internal HashSet<(uint, uint, ulong)> OwnFiles { get; } = new();

        /// <summary>Files found unchanged (not read).</summary>
        internal int Hits { get; private set; }

        /// <summary>Files written (read and hashed, or their hashes changed).</summary>
        internal int Stored { get; private set; }

        /// <summary>Files too large to record (more than <see cref="MaxBlocksPerRow"/> blocks): read again by every search.</summary>
        internal int TooLarge { get; private set; }

        /// <summary>The most blocks one row holds: 16 bytes each, well under SQLite's 1 GB limit on a value (31 M blocks: 3.7 TiB at 128 KiB).</summary>
        internal const int MaxBlocksPerRow = 1 << 25;

        /// <summary>
        /// Opens the hash file at the absolute <paramref name="path"/>, creating it (mode 0600) when there is
        /// none (<see cref="ModuleDatabase"/>: a symbolic link, anything but a regular file, a damaged
        /// database, another application's, or one of a newer version is refused untouched).
        /// </summary>
        internal static HashFile Open(string path)
        {
            SqliteConnection connection = ModuleDatabase.Open(path, Kind, out string opened);
            try
            {
                var file = new HashFile(path, connection);
                foreach (string own in new[] { opened, opened + "-wal", opened + "-shm", opened + "-journal" })
                {
                    if (FileStatus.OfPath(own, followLinks: false) is FileStatus st)
                    {
                        file.OwnFiles.Add((st.DevMajor, st.DevMinor, st.Inode));
                    }
                }

                return file;
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The hashes and states of the unchanged file named by <paramref name="key"/>, hashed with
        /// <paramref name="blockSize"/>; false when there are none (never seen, changed since, or a damaged row).
        /// The arrays hold the file's data blocks only: <paramref name="layout"/> numbers them where the file has
        /// holes (null where its blocks are all data, 0 to <paramref name="blocks"/> - 1); a row of another layout
        /// is not taken.
        /// </summary>
        internal bool TryGet(in HashFileKey key, int blockSize, byte method, int blocks, int[]? layout, out UInt128[] hashes, out byte[] present)
        {
            hashes = Array.Empty<UInt128>();
            present = Array.Empty<byte>();
            Bind(select, key, blockSize);
            using SqliteDataReader row = Guard(() => select.ExecuteReader());
            if (!Guard(row.Read))
            {
                return false;
            }

            // The file is the user's and SQLite's columns take any type: anything but the expected is a damaged row.
            if (row.GetValue(1) is not byte[] h || row.GetValue(2) is not byte[] p || row.GetValue(3) is not long checksum)
            {
                return false;
            }

            if (h.Length != blocks * 16 || p.Length != blocks || Checksum(key, blockSize, method, h, p, layout) != checksum)
            {
                return false; // damaged, written for another length, or hashed another way: read the file again
            }

            hashes = new UInt128[blocks];
            for (int b = 0; b < blocks; b++)
            {
                hashes[b] = BinaryPrimitives.ReadUInt128LittleEndian(h.AsSpan(b * 16, 16));
            }

            present = p;
            Hits++;
            return true;
        }

        /// <summary>Records a file's hashes, of its data blocks numbered by <paramref name="layout"/> (null: all blocks), replacing what was known of its inode; committed at once.</summary>
        internal void Put(in HashFileKey key, string path, int blockSize, byte method, int[]? layout, UInt128[] hashes, byte[] present)
        {
            if (hashes.Length > MaxBlocksPerRow)
            {
                TooLarge++;
                return; // over SQLite's value size: read again next time rather than fail the search
            }

            if (Full is not null)
            {
                NotStored++;
                return;
            }

            byte[] h = new byte[hashes.Length * 16];
            for (int b = 0; b < hashes.Length; b++)
            {
                BinaryPrimitives.WriteUInt128LittleEndian(h.AsSpan(b * 16, 16), hashes[b]);
            }

            Bind(upsert, key, blockSize);
            upsert.Parameters["$path"].Value = path;
            upsert.Parameters["$at"].Value = DateTime.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture);
            upsert.Parameters["$hashes"].Value = h;
            upsert.Parameters["$present"].Value = present;
            upsert.Parameters["$checksum"].Value = Checksum(key, blockSize, method, h, present, layout);
            try
            {
                Guard(upsert.ExecuteNonQuery);
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.InsufficientSpace or FileErrorKind.IOError or FileErrorKind.InUse)
            {
                // The disk filled up (or failed), or another program held the file locked longer than SQLite waits
                // (sqlite3 with a transaction open): the search goes on without recording (the hash file is a cache;
                // what is not in it is read again next time); the command says so when it ends.
                Full = ex;
                NotStored++;
                return;
            }

            Stored++;
        }

        /// <summary>Set when the disk filled up (or failed), or the file stayed locked by another program, during the search: from then on nothing more was recorded.</summary>
        internal FileOperationException? Full { get; private set; }

        /// <summary>Files hashed but not recorded, the disk being full (or failing).</summary>
        internal int NotStored { get; private set; }

        /// <inheritdoc/>
        public void Dispose()
        {
            select.Dispose();
            upsert.Dispose();
            connection.Dispose();
        }

        /// <summary>
        /// The row's checksum; it also covers how the hashes were made (<paramref name="method"/>, appended when not 0) and
        /// that blocks of zeros are recorded as such (<see cref="ZerosRecorded"/>, appended: a row from before, which said
        /// nothing of them, is read again once, or the zeros a duplicate range needs would stay out of it), so a row made
        /// another way is read again, never compared.
        /// </summary>
        private static long Checksum(in HashFileKey key, int blockSize, byte method, byte[] hashes, byte[] present, int[]? layout)
        {
            var x = new XxHash64();
            Span<byte> head = new byte[48];
            BinaryPrimitives.WriteUInt64LittleEndian(head, key.FileSystemId);
            BinaryPrimitives.WriteUInt64LittleEndian(head[8..], key.Inode);
            BinaryPrimitives.WriteInt64LittleEndian(head[16..], key.Size);
            BinaryPrimitives.WriteInt64LittleEndian(head[24..], Nanoseconds(key.ModifyTime));
            BinaryPrimitives.WriteInt64LittleEndian(head[32..], Nanoseconds(key.ChangeTime));
            BinaryPrimitives.WriteInt64LittleEndian(head[40..], blockSize);
            x.Append(head);
            x.Append(hashes);
            x.Append(present);
            if (method != 0)
            {
                x.Append(new[] { method });
            }

            x.Append(new[] { ZerosRecorded });

            if (layout is not null)
            {
                x.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(layout.AsSpan()));
            }

            return (long)x.GetCurrentHashAsUInt64();
        }

        /// <summary>Appended to every row's checksum: its blocks of zeros are recorded (state 2), not left out as before.</summary>
        private const byte ZerosRecorded = 0x5B; // 0x5A: a build that hashed zeros as data

        private static long Nanoseconds(FileTime t) => (t.Seconds * 1_000_000_000L) + t.Nanoseconds;

        private static void Bind(SqliteCommand command, in HashFileKey key, int blockSize)
        {
            command.Parameters["$fs"].Value = (long)key.FileSystemId;
            command.Parameters["$inode"].Value = (long)key.Inode;
            command.Parameters["$bs"].Value = blockSize;
            command.Parameters["$size"].Value = key.Size;
            command.Parameters["$mtime"].Value = Nanoseconds(key.ModifyTime);
            command.Parameters["$ctime"].Value = Nanoseconds(key.ChangeTime);
        }

        private T Guard<T>(Func<T> action) => ModuleDatabase.Guard(Path, Kind, action);

        private SqliteCommand Command(string sql)
        {
            SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return c;
        }
    }
}
