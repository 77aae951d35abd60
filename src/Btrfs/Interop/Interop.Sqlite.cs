namespace Btrfs.Interop
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Runtime.InteropServices;

    /// <summary>
    /// Where the native SQLite library (SQLitePCLRaw's e_sqlite3) is found: the module ships one build per
    /// Linux architecture in bin/runtimes/&lt;rid&gt;/native/, and a host such as pwsh does not probe there
    /// (its own deps.json knows nothing of the module). <see cref="Initialize"/> points the provider's
    /// DllImport at the build for this process's architecture and C library (the first that loads),
    /// then lets SQLitePCLRaw initialize. Where that folder is absent (the test host, whose deps.json lists the package's native
    /// assets), the runtime's own probing is left to find it.
    /// </summary>
    internal static class SqliteLibrary
    {
        private const string Name = "e_sqlite3";
        private static readonly object Gate = new();
        private static bool initialized;
        private static bool resolverSet;

        /// <summary>The module's builds of the native library for this architecture (glibc first, then musl), those that are there.</summary>
        internal static string[] ModuleNativeFiles
        {
            get
            {
                string? bin = Path.GetDirectoryName(typeof(SqliteLibrary).Assembly.Location);
                if (string.IsNullOrEmpty(bin))
                {
                    return Array.Empty<string>();
                }

                string arch = RuntimeInformation.ProcessArchitecture switch
                {
                    Architecture.X64 => "x64",
                    Architecture.Arm64 => "arm64",
                    _ => RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
                };
                return Array.FindAll(
                    new[] { "linux-" + arch, "linux-musl-" + arch },
                    rid => File.Exists(Path.Combine(bin, "runtimes", rid, "native", "lib" + Name + ".so")))
                    .Select(rid => Path.Combine(bin, "runtimes", rid, "native", "lib" + Name + ".so"))
                    .ToArray();
            }
        }

        /// <summary>
        /// Once per process: the resolver for the provider's DllImport (the first of the module's builds
        /// that loads: a musl build does not load into a glibc process, nor the reverse), then
        /// SQLitePCLRaw's initialization. Retried after a failure.
        /// </summary>
        internal static void Initialize()
        {
            lock (Gate)
            {
                if (initialized)
                {
                    return;
                }

                if (!resolverSet)
                {
                    string[] files = ModuleNativeFiles;
                    if (files.Length > 0)
                    {
                        try
                        {
                            NativeLibrary.SetDllImportResolver(typeof(SQLitePCL.SQLite3Provider_e_sqlite3).Assembly, (name, _, _) =>
                            {
                                if (name != Name)
                                {
                                    return IntPtr.Zero;
                                }

                                foreach (string file in files)
                                {
                                    if (NativeLibrary.TryLoad(file, out IntPtr handle))
                                    {
                                        return handle;
                                    }
                                }

                                return IntPtr.Zero;
                            });
                        }
                        catch (InvalidOperationException)
                        {
                            // Another component of this process set a resolver for the provider already: it is used.
                        }
                    }

                    resolverSet = true;
                }

                SQLitePCL.Batteries_V2.Init();
                initialized = true;
            }
        }
    }
}
