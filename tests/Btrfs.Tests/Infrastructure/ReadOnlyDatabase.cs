namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Globalization;

    /// <summary>
    /// Looks into a module's SQLite file (a hash file, a state file) while a run may be writing it: in-process (a
    /// sqlite3 process per look is too slow to catch a run mid-way), read-only, not pooled (nothing kept open
    /// between looks), and a busy database is waited for rather than an error.
    /// </summary>
    internal static class ReadOnlyDatabase
    {
        /// <summary>The single number <paramref name="sql"/> (a count) gives.</summary>
        internal static int Count(string path, string sql)
        {
            using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
            c.Open();
            using var q = c.CreateCommand();
            q.CommandText = sql;
            return Convert.ToInt32(q.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
    }
}
