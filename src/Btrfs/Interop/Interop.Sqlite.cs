namespace Btrfs.Interop
{
    using System;
    using System.IO;
    using System.Reflection;
    using System.Runtime.InteropServices;
    using System.Threading;

    /// <summary>
    /// Where the native SQLite library (SQLitePCLRaw's e_sqlite3) is found: the module ships one build per
    /// Linux architecture in bin/runtimes/&lt;rid&gt;/native/, and a host such as pwsh does not probe there
    /// (its own deps.json knows nothing of the module). <see cref="Initialize"/> points the provider's
    /// DllImport at the build for this process's architecture and C library, then lets SQLitePCLRaw
    /// initialize. Where that folder is absent (the test host, whose deps.json lists the package's native
    /// assets), the runtime's own probing is left to find it.
    /// </summary>
    internal static class SqliteLibrary
    {
        private const string Name = "e_sqlite3";
        private static int initialized;

        /// <summary>The folder the module loads the native library from, or null when it is not there.</summary>
        internal static string? ModuleNativeFile
        {
            get
            {
                string? bin = Path.GetDirectoryName(typeof(SqliteLibrary).Assembly.Location);
                if (string.IsNullOrEmpty(bin))
                {
                    return null;
                }

                string arch = RuntimeInformation.ProcessArchitecture switch
                {
                    Architecture.X64 => "x64",
                    Architecture.Arm64 => "arm64",
                    _ => RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
                };
                bool musl = File.Exists($"/lib/ld-musl-{(arch == "x64" ? "x86_64" : "aarch64")}.so.1");
                string file = Path.Combine(bin, "runtimes", (musl ? "linux-musl-" : "linux-") + arch, "native", "lib" + Name + ".so");
                return File.Exists(file) ? file : null;
            }
        }

        /// <summary>Once per process: the resolver for the provider's DllImport, then SQLitePCLRaw's initialization.</summary>
        internal static void Initialize()
        {
            if (Interlocked.Exchange(ref initialized, 1) == 1)
            {
                return;
            }

            Assembly provider = typeof(SQLitePCL.SQLite3Provider_e_sqlite3).Assembly;
            string? file = ModuleNativeFile;
            if (file is not null)
            {
                try
                {
                    NativeLibrary.SetDllImportResolver(provider, (name, _, _) => name == Name && NativeLibrary.TryLoad(file, out IntPtr h) ? h : IntPtr.Zero);
                }
                catch (InvalidOperationException)
                {
                    // Another component of this process set a resolver for the provider already: it is used.
                }
            }

            SQLitePCL.Batteries_V2.Init();
        }
    }
}
