namespace Btrfs.Core
{
    using System;
    using System.Globalization;
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
    internal sealed record ModuleDatabaseKind(string What, string Parameter, int ApplicationId, int FormatVersion, string Schema, string RequiredTable, string[] RequiredColumns);

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
        /// Opens (or creates) the database at the absolute <paramref name="path"/>. With
        /// <paramref name="readOnly"/> (a -WhatIf run) nothing is created or written: null when there is no file.
        /// </summary>
        internal static SqliteConnection? Open(string path, ModuleDatabaseKind kind, bool readOnly = false)
        {
            string dir = System.IO.Path.GetDirectoryName(path) ?? "/", name = System.IO.Path.GetFileName(path);
            using (SafeFileDescriptor parent = DirectoryHandle.Open(dir, $"Give {kind.Parameter} a path in an existing directory."))
            {
                int errno = FileStatus.OfAt(parent, name) is null ? Errno.ENOENT : Errno.EEXIST;
                SafeFileDescriptor? created = readOnly ? null : Names.TryCreateExclusive(parent, name, Convert.ToInt32("600", 8), out errno);

                if (created is not null)
                {
                    created.Dispose();
                }
                else if (readOnly && errno == Errno.ENOENT)
                {
                    return null;
                }
                else if (errno != Errno.EEXIST)
                {
                    throw FileOperationException.FromErrno(errno, "open", path, $"Cannot create the {kind.What}");
                }
                else if (FileStatus.OfAt(parent, name) is not FileStatus { IsRegular: true })
                {
                    throw FileStatus.OfAt(parent, name) is FileStatus { IsSymbolicLink: true }
                        ? new FileOperationException(FileErrorKind.IsSymbolicLink, 0, "open", path, $"The {kind.What} '{path}' is a symbolic link: it is not followed. Give the path of the file itself.")
                        : new FileOperationException(FileErrorKind.NotRegularFile, 0, "open", path, $"The {kind.What} '{path}' is not a regular file. Give the path of a {kind.What}, or of one to create.");
                }
            }

            SqliteLibrary.Initialize();
            var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
            try
            {
                connection.Open();
                Prepare(connection, path, kind, readOnly);
                return connection;
            }
            catch (SqliteException ex)
            {
                connection.Dispose();
                throw Damaged(path, kind, ex);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>The error for a database SQLite cannot use (not a database, or damaged).</summary>
        internal static FileOperationException Damaged(string path, ModuleDatabaseKind kind, SqliteException ex) =>
            new(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' cannot be used: {ex.Message.TrimEnd('.')} (SQLite error {ex.SqliteErrorCode}). Move it away or delete it; the next run builds a new one.", ex);

        internal static int Execute(SqliteConnection connection, string sql)
        {
            using SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return c.ExecuteNonQuery();
        }

        internal static long Scalar(SqliteConnection connection, string sql)
        {
            using SqliteCommand c = connection.CreateCommand();
            c.CommandText = sql;
            return Convert.ToInt64(c.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        /// <summary>Checks (or, for a new file, writes) the schema: ours, in a format this version knows.</summary>
        private static void Prepare(SqliteConnection connection, string path, ModuleDatabaseKind kind, bool readOnly)
        {
            // Nothing is written before the file is known to be ours (journal_mode = WAL rewrites the header).
            long app = Scalar(connection, "PRAGMA application_id"), version = Scalar(connection, "PRAGMA user_version"), tables = Scalar(connection, "SELECT count(*) FROM sqlite_master");
            if (app == 0 && version == 0 && tables == 0 && !readOnly)
            {
                Execute(connection, "BEGIN IMMEDIATE");
                Execute(connection, kind.Schema);
                Execute(connection, $"PRAGMA application_id = {kind.ApplicationId}");
                Execute(connection, $"PRAGMA user_version = {kind.FormatVersion}");
                Execute(connection, "COMMIT");
            }
            else if (app != kind.ApplicationId)
            {
                throw new FileOperationException(FileErrorKind.DatabaseNotOurs, 0, "sqlite", path, $"'{path}' is a database, but not a {kind.What} of this module (application id {app}): it is left alone. Give another {kind.Parameter} path.");
            }
            else if (version > kind.FormatVersion)
            {
                throw new FileOperationException(FileErrorKind.DatabaseNewerVersion, 0, "sqlite", path, $"The {kind.What} '{path}' was written by a newer version of the module (format {version}; this version reads {kind.FormatVersion}): it is left alone. Update the module, or give another {kind.Parameter} path.");
            }
            else
            {
                string columns = string.Join(", ", Array.ConvertAll(kind.RequiredColumns, c => "'" + c + "'"));
                if (version != kind.FormatVersion || Scalar(connection, $"SELECT count(*) FROM pragma_table_info('{kind.RequiredTable}') WHERE name IN ({columns})") != kind.RequiredColumns.Length)
                {
                    throw new FileOperationException(FileErrorKind.DatabaseCorrupt, 0, "sqlite", path, $"The {kind.What} '{path}' has lost its table '{kind.RequiredTable}' (format {version}): it cannot be used. Move it away or delete it; the next run builds a new one.");
                }
            }

            if (!readOnly)
            {
                Execute(connection, "PRAGMA journal_mode = WAL");
                Execute(connection, "PRAGMA synchronous = NORMAL");
            }
        }
    }
}
