namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.IO;
    using Btrfs.Kernel;

    /// <summary>Starts tests/Btrfs.Tests.Child, a separate process that converts or defragments a file and pauses mid-copy, for SIGKILL tests.</summary>
    internal static class ChildConverter
    {
        internal static string Assembly
        {
            get
            {
                // tests/Btrfs.Tests/bin/<Configuration>/net10.0/ -> tests/Btrfs.Tests.Child/bin/<Configuration>/net10.0/
                string here = AppContext.BaseDirectory.TrimEnd('/');
                string config = Path.GetFileName(Path.GetDirectoryName(here)!);
                string path = Path.Combine(RepoPaths.Root, "tests", "Btrfs.Tests.Child", "bin", config, Path.GetFileName(here), "Btrfs.Tests.Child.dll");
                if (!File.Exists(path))
                {
                    throw new FileNotFoundException("build the solution first (dotnet test Btrfs.sln builds the child too)", path);
                }

                return path;
            }
        }

        /// <summary>Starts converting <paramref name="path"/> to NOCOW in a child process that pauses after <paramref name="pauseAfter"/> bytes.</summary>
        internal static ChildProcess ConvertToNoCowPausing(string path, long pauseAfter, bool namedTemporary = false) =>
            ChildProcess.Start("dotnet", Assembly, namedTemporary ? "convert-to-nocow-named" : "convert-to-nocow", path, pauseAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));

        /// <summary>Starts converting <paramref name="path"/> to NOCOW in a child process that stops just after the exchange, in the grace (prints "exchanged &lt;hidden name&gt;").</summary>
        internal static ChildProcess ConvertToNoCowStoppingAfterTheExchange(string path) =>
            ChildProcess.Start("dotnet", Assembly, "convert-to-nocow-exchanged", path, "0");

        /// <summary>As <see cref="ConvertToNoCowStoppingAfterTheExchange"/>, for a file with other hard links (as with -Force).</summary>
        internal static ChildProcess ConvertLinkedToNoCowStoppingAfterTheExchange(string path) =>
            ChildProcess.Start("dotnet", Assembly, "convert-to-nocow-linked-exchanged", path, "0");

        /// <summary>
        /// Converts <paramref name="path"/> (hard-linked) to NOCOW in a child process, then starts making <paramref name="other"/>,
        /// another name of it, a link of the converted file and stops just before the exchange (prints "linking &lt;hidden name&gt;").
        /// </summary>
        internal static ChildProcess RelinkStoppingBeforeTheExchange(string path, string other) =>
            ChildProcess.Start("dotnet", Assembly, "relink-before-exchange", path, other);

        /// <summary>Starts defragmenting <paramref name="path"/> in a child process that pauses after <paramref name="pauseAfter"/> bytes.</summary>
        internal static ChildProcess DefragPausing(string path, long pauseAfter) =>
            ChildProcess.Start("dotnet", Assembly, "defrag", path, pauseAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
