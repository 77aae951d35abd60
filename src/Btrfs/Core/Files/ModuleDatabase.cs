namespace Btrfs.Core
{
    using System;
    using System.Globalization;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;
    using Microsoft.Data.Sqlite;

    /// <summary>What a kind of database file the module keeps is: its name for messages, its SQLite application id, format and schema.</summary>
    /// <param name="What">How messages name it ("hash file", "state file").</param>
    /// <param name="Parameter">The parameter that names it ("-HashFile").</param>
    /// <param name="ApplicationId">PRAGMA application_id of such a file.</param>
    /// <param name="FormatVersion">PRAGMA user_version this version writes and reads.</param>
    /// <param name="Schema">The statements that create a new one.</param>
    /// <param name="RequiredTable">A table every such file has.</param>
    /// <param name="RequiredColumns">Its columns (all must be there).</param>
    internal sealed record ModuleDatabaseKind(string What, string Parameter, int ApplicationId, int FormatVersion, string Schema, string RequiredTable, string[] RequiredColumns)
    {
        /// <summary>
        /// Check every page of an existing file (PRAGMA quick_check) before it is used or changed: for a small
        /// file whose damage would otherwise fail every later statement (a state file); a hash file, large
        /// and only a source of candidates the kernel checks byte for byte, is not read whole.
        /// </summary>
        internal bool CheckWhole { get; init; }

        /// <summary>Further tables every such file has, with their columns: one lost is the same refusal as <see cref="RequiredTable"/> lost.</summary>
        internal (string Table, string[] Columns)[] AlsoRequired { get; init; } = Array.Empty<(string, string[])>();
    }

    /// <summary>
    /// The one way the module opens a SQLite file of its own that a user names (Find-BtrfsDuplicate's
    /// hash file, Invoke-BtrfsDefrag's state file): created exclusively with mode 0600 when there is none,
    /// never through a symbolic link; refused, untouched, when it is not a regular file, not a SQLite
    /// database (DatabaseCorrupt), another application's (DatabaseNotOurs), or written by a newer
    /// version (DatabaseNewerVersion). Nothing is written before it is known to be one of ours; then it
    /// runs in WAL mode, synchronous NORMAL: every committed statement survives a killed process.
    /// </summary>
    internal static class ModuleDatabase
    {
        /// <summary>
        /// Opens (or creates) the database at the absolute <paramref name="path"/>.
        /// A new file is made complete under a hidden name of this run's (schema, application id and
        /// format committed) and only then given the name, with link(2), which never replaces a file: a
        /// failure (a full disk) leaves nothing behind, and a run that starts at the same moment either
        /// finds no file or a complete one, never an empty one. Before SQLite sees the path, the file is
        /// examined through a descriptor of our own (O_NOFOLLOW): the caller's own file, writable by no
        /// one else, whose SQLite header carries this kind's application id and a format this version
        /// reads; its companions (-journal, -wal, -shm) must be absent or regular files of the same owner;
        /// afterwards the path must still name the inode examined.
        /// </summary>
        internal static SqliteConnection Open(string path, ModuleDatabaseKind kind) => Open(path, kind, out _);

        /// <summary>As <see cref="Open(string, ModuleDatabaseKind)"/>; <paramref name="opened"/> is the canonical path SQLite opened (the one to use for anything else done to the file by name).</summary>
        internal static SqliteConnection Open(string path, ModuleDatabaseKind kind, out string opened)
        {
            SqliteLibrary.Initialize(); // first: a library that cannot load must not leave a file behind
            string dir = System.IO.Path.GetDirectoryName(path) ?? "/", name = System.IO.Path.GetFileName(path);

            // SQLite opens the file and its companions by name: the name must lead where it led when it was
            // checked, so no other user may be able to change the directories on the way (PrivateDirectory).
            (dir, FileStatus checkedDir) = PrivateDirectory.Check(
                dir,
                $"The {kind.What} '{path}'",
                "where SQLite opens the file or its -wal and -shm files, and have this run write through it",
                $"Give a {kind.Parameter} path in a directory only you can write to (for example one made with mkdir -m 700), on a path of directories owned by you or root.",
                path,
                $"Give {kind.Parameter} a path in an existing directory.");
            string source = dir == "/" ? "/" + name : dir + "/" + name;
            opened = source;
            FileStatus examined;
            SafeFileDescriptor parentFd;
            try
            {
                parentFd = DirectoryHandle.Open(dir, $"Give {kind.Parameter} a path in an existing directory.");
            }
            catch (FileOperationException ex)
            {
                throw DirectoryHandle.CannotCreateIn(ex, dir, path, $"use the {kind.What} '{path}'", "Nothing was created or changed.");
            }

            using (SafeFileDescriptor parent = parentFd)
            {
                if (FileStatus.Of(parent) is not FileStatus parentNow || !parentNow.SameInode(checkedDir))
                {
                    throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", path, $"The directory of the {kind.What} '{path}' was replaced while it was being checked: nothing was created or changed. Run again.");
                }

                if (name.Length == 0)
                {
                    throw new FileOperationException(FileErrorKind.IsDirectory, Errno.EISDIR, "open", path, $"{kind.Parameter} '{path}' names a directory. Give the path of a {kind.What} (one is created when there is none).");
                }

                if (FileStatus.OfAt(parent, name) is null)
                {
                    // Before it is made (a hostile review: a refusal here came after, and left a new, empty file behind
                    // while it said nothing was changed): the new file will be this user's.
                    ThrowIfCompanionUnsafe(parent, name, path, kind, Metadata.FileSystemUserId, "Nothing was created");
                    ThrowIfCompanionLeft(parent, name, path, kind);
                    CreateComplete(parent, dir, name, path, kind);
                }

                examined = Examine(parent, name, path, kind);
                using (OpenFile file = OpenFile.Open(new FileLocation(parent, name, path), OpenOptions.NoFollow))
                {
                    // SQLite writes even to read it (its -wal and -shm files): on a read-only mount that was
                    // "SQLite Error 10: disk I/O error". Said as what it is (a new file says it at O_TMPFILE).
                    if (file.IsReadOnlyMount)
                    {
                        throw new FileOperationException(FileErrorKind.ReadOnlyFileSystem, Errno.EROFS, "statfs", path, $"Cannot use the {kind.What} '{path}': its filesystem is mounted read-only, and SQLite writes beside it even to read it (its -wal and -shm files). It was left as it is. Remount it read-write, or give another {kind.Parameter} path.");
                    }
                }

                ThrowIfCompanionUnsafe(parent, name, path, kind, examined.Uid, "Nothing was changed");
            }

            var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = source, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = 5 }.ToString());
            try
            {
                connection.Open();

                // Before the first read: SQLite keeps the WAL index in its own memory, not in a mapped -shm file.
                // A write to a mapped page that the filesystem cannot place (btrfs copies it: a full disk) is
                // SIGBUS, which ended the whole PowerShell process. The lock is held until the file is closed;
                // another process using it meanwhile is refused (InUse) after the busy timeout.
                Execute(connection, "PRAGMA locking_mode = EXCLUSIVE");
                if (FileStatus.OfPath(source, followLinks: false) is not FileStatus now || !now.SameInode(examined))
                {
                    throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", path, $"'{path}' was replaced while the {kind.What} was being opened: it is left alone. Run again.");
                }

                Prepare(connection, path, kind);
                return connection;
            }
            catch (SqliteException ex)
            {
                connection.Dispose();
                throw Failed(path, kind, ex);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The database's companions (-journal, -wal, -shm), which SQLite opens by name, must be absent or regular files of
        /// <paramref name="owner"/>: a link there would have SQLite write through it.
        /// </summary>
        private static void ThrowIfCompanionUnsafe(SafeFileDescriptor parent, string name, string path, ModuleDatabaseKind kind, uint owner, string outcome)
        {
            foreach (string suffix in new[] { "-journal", "-wal", "-shm" })
            {
                if (FileStatus.OfAt(parent, name + suffix) is FileStatus companion && (!companion.IsRegular || companion.Uid != owner))
                {
                    throw new FileOperationException(FileErrorKind.NotRegularFile, 0, "open", path + suffix, $"'{path}{suffix}' beside the {kind.What} is not a regular file of the same owner (a link, or someone else's): SQLite would write through it. {outcome}; remove it, or give another {kind.Parameter} path.");
                }
            }
        }

        /// <summary>
        /// Where there is no database yet, a companion is left from one that is gone (a run killed, then its file deleted):
        /// SQLite would take it for the new file's and write another database's changes into it (a review: the new file
        /// was left holding another database). Refused before anything is made.
        /// </summary>
        private static void ThrowIfCompanionLeft(SafeFileDescriptor parent, string name, string path, ModuleDatabaseKind kind)
        {
            foreach (string suffix in new[] { "-journal", "-wal", "-shm" })
            {
                if (FileStatus.OfAt(parent, name + suffix) is not null)
                {
                    throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "open", path + suffix, $"'{path}{suffix}' is there, but the {kind.What} '{path}' is not: it is left from a database that is gone (a run stopped, then its file deleted), and SQLite would take it for the new file's and write another database's changes into it. Nothing was created; remove it (with any -journal, -wal and -shm files beside it), or give another {kind.Parameter} path.");
                }
            }
        }

        /// <summary>
        /// Makes a new, complete database (schema, application id, format) under a hidden name of this
        /// run's in the open directory, then links it to <paramref name="name"/>. If another run linked one
        /// first, that one stays and this one goes. Any failure removes what this call made, and only that.
        /// </summary>
        private static void CreateComplete(SafeFileDescriptor parent, string dir, string name, string path, ModuleDatabaseKind kind)
        {
            using TemporaryFile temp = TemporaryFile.Create(parent, dir, name, forceNamed: true, mode: Convert.ToInt32("600", 8));
            string hidden = temp.CurrentName!;

            // What a run killed here left (its hidden file, proven ours by the marker, and that file's SQLite
            // journal, named after it): removed, as a replacing cmdlet removes its own leftovers.
            foreach (string stale in temp.RemoveStale().Where(f => !f.WasReplaced).Select(f => f.Name))
            {
                if (FileStatus.OfAt(parent, stale + "-journal") is { IsRegular: true, Links: 1 } journal && journal.Uid == FileStatus.Of(temp.Handle)?.Uid)
                {
                    _ = Names.TryRemove(parent, stale + "-journal");
                }
            }

            try
            {
                using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = System.IO.Path.Combine(dir, hidden), Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
                connection.Open();

                // SQLite opened it by its path: before anything is written, that path must still lead to the
                // file this call created (not to a link someone put in its place).
                if (FileStatus.OfAt(parent, hidden) is not FileStatus opened || FileStatus.Of(temp.Handle) is not FileStatus made || !opened.SameInode(made))
                {
                    throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", path, $"The new {kind.What} '{path}' was replaced under its temporary name while it was being made: nothing was written to it. Run again, with {kind.Parameter} in a directory only you can write to.");
                }

                Execute(connection, "BEGIN IMMEDIATE");
                Execute(connection, kind.Schema);
                Execute(connection, $"PRAGMA application_id = {kind.ApplicationId}");
                Execute(connection, $"PRAGMA user_version = {kind.FormatVersion}");
                Execute(connection, "COMMIT");
            }
            catch (SqliteException ex)
            {
                throw Failed(path, kind, ex);
            }
            finally
            {
                // SQLite's rollback journal of the hidden name (gone after a commit; a failure can leave it):
                // its name carries this run's stamp, so it is this call's.
                _ = Names.TryRemove(parent, hidden + "-journal");
            }

            try
            {
                temp.LinkAsNew(name, path);
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AlreadyExists)
            {
                // Another run made it in the meantime, complete: that one is used; this one goes (Dispose).
            }
        }

        /// <summary>
        /// The error for a SQLite failure: a file that is not a database or is damaged (DatabaseCorrupt,
        /// "move it away"), one another process holds (InUse), no permission, a full disk, or an I/O error.
        /// </summary>
        internal static FileOperationException Failed(string path, ModuleDatabaseKind kind, SqliteException ex) => (ex.SqliteErrorCode & 0xFF) switch
        {
            11 or 26 => new(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' cannot be used: {ex.Message.TrimEnd('.')} (SQLite error {ex.SqliteErrorCode}). Move it away or delete it; the next run builds a new one.", ex),
            5 or 6 => new(FileErrorKind.InUse, 0, "sqlite", path, $"The {kind.What} '{path}' is in use by another process (SQLite error {ex.SqliteErrorCode}): another run is using it. Wait for it, or give another {kind.Parameter} path.", ex),
            14 when FullFor(path) is int full => new(FileErrorKind.InsufficientSpace, full, "sqlite", path, $"Cannot use the {kind.What} '{path}': {(full == Errno.EDQUOT ? "this user's disk quota there is used up" : "the filesystem holding it has no room for a new file (no free space, or no free inodes)")}, so SQLite cannot create its -wal and -shm files beside it ({ex.Message.TrimEnd('.')}, SQLite error {ex.SqliteErrorCode}). Free some space there, or give another {kind.Parameter} path. It was left as it is.", ex),
            3 or 8 or 14 or 23 => new(FileErrorKind.AccessDenied, 0, "sqlite", path, $"Cannot use the {kind.What} '{path}': {ex.Message.TrimEnd('.')} (SQLite error {ex.SqliteErrorCode}). Check its permissions and those of its directory (SQLite writes -wal and -shm files beside it).", ex),
            13 => new(FileErrorKind.InsufficientSpace, 0, "sqlite", path, $"The {kind.What} '{path}' cannot grow: the disk is full (SQLite error {ex.SqliteErrorCode}). Free some space.", ex),
            _ => new(FileErrorKind.IOError, 0, "sqlite", path, $"The {kind.What} '{path}' failed: {ex.Message.TrimEnd('.')} (SQLite error {ex.SqliteErrorCode}).", ex),
        };

        /// <summary>
        /// Whether SQLite's "unable to open database file" (SQLITE_CANTOPEN) beside <paramref name="path"/> is a full disk
        /// (ENOSPC) or a used-up quota (EDQUOT), which it does not tell apart from a permission problem: the kernel is asked
        /// the same way, by a file created in that directory (unnamed, so nothing is left); refused for another reason
        /// (EACCES, EROFS...) it is none. Where that file is made (xfs takes one when no name fits: a hostile test, with
        /// 72 KiB shown free), less than 1 MiB free counts as full. Null: neither.
        /// </summary>
        private static int? FullFor(string path)
        {
            try
            {
                using SafeFileDescriptor dir = DirectoryHandle.Open(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/");
                if (FileStatus.OfAt(dir, System.IO.Path.GetFileName(path) + "-wal") is not null)
                {
                    return null; // nothing had to be created: what SQLite could not open is there (a hostile test: a -wal of mode 000 on a nearly full disk was said to be a full disk)
                }

                using SafeFileDescriptor? probe = Names.TryCreateUnnamed(dir, 0x180, out int errno);
                if (probe is null && errno is Errno.ENOSPC or Errno.EDQUOT)
                {
                    return errno;
                }

                return (probe is not null || errno is Errno.EOPNOTSUPP or Errno.EISDIR or Errno.EINVAL) && Files.AvailableBytes(dir, path) < (1 << 20) ? Errno.ENOSPC : null;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>
        /// An existing file, examined before SQLite is let near it: a regular file (never a link), whose
        /// first 100 bytes are a SQLite header with this kind's application id (offset 68, big-endian) and a
        /// format (user_version, offset 60) this version reads. Anything else is refused untouched.
        /// </summary>
        private static FileStatus Examine(SafeFileDescriptor parent, string name, string path, ModuleDatabaseKind kind)
        {
            if (FileStatus.OfAt(parent, name) is FileStatus { IsSymbolicLink: true })
            {
                throw new FileOperationException(FileErrorKind.IsSymbolicLink, 0, "open", path, $"The {kind.What} '{path}' is a symbolic link: it is not followed. Give the path of the file itself.");
            }

            if (FileStatus.OfAt(parent, name) is FileStatus { IsRegular: false })
            {
                throw new FileOperationException(FileErrorKind.NotRegularFile, 0, "open", path, $"The {kind.What} '{path}' is not a regular file. Give the path of a {kind.What}, or of one to create.");
            }

            using SafeFileDescriptor fd = Names.TryOpenForReading(parent, name)
                ?? throw new FileOperationException(FileErrorKind.AccessDenied, 0, "open", path, $"Cannot open the {kind.What} '{path}' to examine it. Check its permissions.");
            FileStatus st = FileStatus.Of(fd) ?? throw new FileOperationException(FileErrorKind.IOError, 0, "statx", path, $"Cannot examine the {kind.What} '{path}'.");
            if (!st.IsRegular)
            {
                throw new FileOperationException(FileErrorKind.NotRegularFile, 0, "open", path, $"The {kind.What} '{path}' is not a regular file. Give the path of a {kind.What}, or of one to create.");
            }

            uint me = Metadata.FileSystemUserId;
            if (st.Uid != me || (st.Permissions & Convert.ToUInt32("022", 8)) != 0)
            {
                string why = st.Uid != me ? $"belongs to user {st.Uid}, not to the user running this (uid {me})" : $"can be written by other users (mode {Convert.ToString(st.Permissions, 8)})";
                throw new FileOperationException(FileErrorKind.DatabaseNotOurs, 0, "open", path, $"The {kind.What} '{path}' {why}: what it records decides what is read and done, so only the caller's own file, writable by no one else, is used. It is left alone. Give another {kind.Parameter} path (a new file is created with mode 0600).");
            }

            byte[] header = new byte[100];
            int got = Files.ReadFullyAt(fd, header, 0, path, $"Cannot read the {kind.What}");
            if (got < 100 || !header.AsSpan(0, 16).SequenceEqual("SQLite format 3\0"u8))
            {
                throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "open", path, $"'{path}' is not a SQLite database{(got == 0 ? " (it is empty)" : string.Empty)}, so it is not a {kind.What}: it is left alone. Move it away or delete it, or give another {kind.Parameter} path.");
            }

            int app = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(68)), version = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(60));
            if (app != kind.ApplicationId)
            {
                throw new FileOperationException(FileErrorKind.DatabaseNotOurs, 0, "open", path, $"'{path}' begins like a SQLite database but is not a {kind.What} of this module (application id {app}: another application's database, or a damaged file): it is left alone. Give another {kind.Parameter} path.");
            }

            if (version > kind.FormatVersion)
            {
                throw new FileOperationException(FileErrorKind.DatabaseNewerVersion, 0, "open", path, $"The {kind.What} '{path}' was written by a newer version of the module (format {version}; this version reads {kind.FormatVersion}): it is left alone. Update the module, or give another {kind.Parameter} path.");
            }

            // SQLite writes the file even to read it (and its -wal file beside it): one this user may not write was
            // "SQLite Error 10: 'disk I/O error'" once SQLite had it open. Said as what it is, before SQLite is near it.
            // Append-only is asked of the attributes: faccessat answers "writable" for it (the kernel refuses only the
            // open for writing; a review).
            InodeFlags attributes = InodeAttributes.TryGet(fd, path) ?? InodeFlags.None;
            bool writable = Files.MayWrite(parent, name, path, out int errno);
            if ((attributes & (InodeFlags.Immutable | InodeFlags.AppendOnly)) != 0 || !writable)
            {
                bool attribute = (attributes & (InodeFlags.Immutable | InodeFlags.AppendOnly)) != 0;
                string why = attribute
                    ? $"it is {((attributes & InodeFlags.Immutable) != 0 ? "immutable (lsattr shows i)" : "append-only (lsattr shows a)")}"
                    : $"its mode is {Convert.ToString(st.Permissions, 8)}, owner uid {st.Uid}";
                string fix = attribute ? $"chattr -i -a '{path}' as root" : $"chmod u+w '{path}' as its owner";
                throw new FileOperationException(FileErrorKind.AccessDenied, attribute ? Errno.EPERM : errno, "faccessat", path, $"Cannot use the {kind.What} '{path}': this user may not write it ({why}), and SQLite writes it even to read it. It was left as it is. Make it writable ({fix}), or give another {kind.Parameter} path.");
            }

            if (Files.WriteAndSearchRefusal(parent, ".") is (Errno.EACCES or Errno.EPERM) and int refused)
            {
                string dir = System.IO.Path.GetDirectoryName(path) is { Length: > 0 } d ? d : "/";
                string why = refused == Errno.EPERM ? "(the directory is immutable)" : "(no write permission on it)";
                throw new FileOperationException(FileErrorKind.AccessDenied, refused, "faccessat", path, $"Cannot use the {kind.What} '{path}': this user may not create files in its directory '{dir}' {why}, where SQLite writes a -wal file beside it even to read it. It was left as it is. Give a {kind.Parameter} path in a directory of yours (for example one made with mkdir -m 700).");
            }

            return st;
        }

        /// <summary>Runs a statement of the file's, turning a SQLite failure into the module's error (<see cref="Failed"/>).</summary>
        internal static T Guard<T>(string path, ModuleDatabaseKind kind, Func<T> action)
        {
            try
            {
                return action();
            }
            catch (SqliteException ex)
            {
                throw Failed(path, kind, ex);
            }
        }

        internal static int Execute(SqliteConnection connection, string sql)
        {
            using SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return c.ExecuteNonQuery();
        }

        internal static string Text(SqliteConnection connection, string sql)
        {
            using SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return Convert.ToString(c.ExecuteScalar(), CultureInfo.InvariantCulture) ?? string.Empty;
        }

        internal static long Scalar(SqliteConnection connection, string sql)
        {
            using SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return Convert.ToInt64(c.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        /// <summary>Checks the schema of a file examined as ours, then puts it in WAL mode.</summary>
        private static void Prepare(SqliteConnection connection, string path, ModuleDatabaseKind kind)
        {
            long version = Scalar(connection, "PRAGMA user_version");
            // The header read before said otherwise (the file changed in between), or its format number is one no version
            // wrote (below this version's: edited, or damaged). (Before: said to have "lost its table"; a hostile review.)
            if (Scalar(connection, "PRAGMA application_id") != kind.ApplicationId)
            {
                throw new FileOperationException(FileErrorKind.DatabaseNotOurs, 0, "sqlite", path, $"'{path}' is not a {kind.What} of this module any more (its application id changed while it was opened): it is left alone. Give another {kind.Parameter} path.");
            }

            if (version != kind.FormatVersion)
            {
                throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' has format {version}, which no version of this module writes (this version reads {kind.FormatVersion}): it was changed by something else, or damaged, and cannot be used. Move it away or delete it; the next run builds a new one.");
            }

            foreach ((string table, string[] required) in kind.AlsoRequired.Prepend((kind.RequiredTable, kind.RequiredColumns)))
            {
                string columns = string.Join(", ", Array.ConvertAll(required, c => "'" + c + "'"));
                if (Scalar(connection, $"SELECT count(*) FROM pragma_table_info('{table}') WHERE name IN ({columns})") != required.Length)
                {
                    throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' has lost its table '{table}' (format {version}): it cannot be used. Move it away or delete it; the next run builds a new one.");
                }
            }

            if (kind.CheckWhole && Text(connection, "PRAGMA quick_check(1)") is var check && check != "ok")
            {
                // Damage past the header (a page overwritten, a disk error): found before anything is written.
                throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' is damaged (SQLite's check says: {check}): it cannot be used. Move it away or delete it; the next run builds a new one.");
            }

            Execute(connection, "PRAGMA journal_mode = WAL");
            Execute(connection, "PRAGMA synchronous = NORMAL");

            // A write transaction now: the -wal file exists from here on (and no -shm: exclusive locking), so a
            // walk of the directory can know it (and leave it alone) from the start.
            Execute(connection, "BEGIN IMMEDIATE");
            Execute(connection, "COMMIT");
        }
    }
}
