namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Text.RegularExpressions;
    using Btrfs.Kernel;

    /// <summary>One extent line of `filefrag -v -b1` (units of one byte).</summary>
    internal sealed record FilefragExtent(int Index, long Logical, long Physical, long Length, IReadOnlySet<string> Flags);

    /// <summary>Runs e2fsprogs' filefrag as the independent truth for FIEMAP results and parses its verbose output.</summary>
    internal static partial class Filefrag
    {
        internal static List<FilefragExtent> Extents(string path)
        {
            string text = Shell.Run("filefrag", "-v", "-b1", path);
            return Parse(text);
        }

        /// <summary>filefrag's summary count, "N extents found": runs of physically contiguous extents.</summary>
        internal static long Found(string path)
        {
            Match m = FoundLine().Match(Shell.Run("filefrag", path));
            return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : throw new InvalidOperationException("filefrag printed no count for " + path);
        }

        internal static List<FilefragExtent> Parse(string text)
        {
            var list = new List<FilefragExtent>();
            foreach (string line in text.Split('\n'))
            {
                Match m = ExtentLine().Match(line);
                if (!m.Success)
                {
                    continue;
                }

                var flags = new HashSet<string>(StringComparer.Ordinal);
                foreach (string f in m.Groups["flags"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    flags.Add(f);
                }

                list.Add(new FilefragExtent(
                    int.Parse(m.Groups["ext"].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups["lstart"].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups["pstart"].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups["len"].Value, CultureInfo.InvariantCulture),
                    flags));
            }

            return list;
        }

        // "   1:     8192..   12287:   13635584..  13639679:   4096:     13635583: last,eof"
        [GeneratedRegex(@"^\s*(?<ext>\d+):\s+(?<lstart>\d+)\.\.\s*(?<lend>\d+):\s+(?<pstart>\d+)\.\.\s*(?<pend>\d+):\s+(?<len>\d+):\s*(?:(?<exp>\d+):)?\s*(?<flags>\S*)\s*$")]
        private static partial Regex ExtentLine();

        [GeneratedRegex(@": (\d+) extents? found")]
        private static partial Regex FoundLine();
    }
}
