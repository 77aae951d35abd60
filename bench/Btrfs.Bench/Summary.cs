// The one table of `bench -- all`: every comparison a benchmark makes adds its row (medians), and the
// table is printed at the end: comparison, ours, anchor, ratio, target, met.
namespace Btrfs.Bench
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;

    internal static class Summary
    {
        private static readonly List<(string Comparison, double Ours, double Anchor, double Target, string Unit, bool MoreIsBetter)> Rows = new();

        /// <summary>The median (the upper one of an even count) of the runs.</summary>
        internal static double Median(IEnumerable<double> runs)
        {
            var s = runs.OrderBy(x => x).ToList();
            return s[s.Count / 2];
        }

        /// <summary>Seconds <paramref name="a"/> takes.</summary>
        internal static double Time(Action a)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            a();
            return sw.Elapsed.TotalSeconds;
        }

        /// <summary>The runs, in seconds with three decimals, for the record.</summary>
        internal static string Join3(List<double> xs) => string.Join(' ', xs.Select(x => x.ToString("F3", CultureInfo.InvariantCulture)));

        /// <summary>
        /// One comparison: our median against the anchor's (seconds unless <paramref name="unit"/> says
        /// otherwise: "extents", "bytes"), and the ratio it must stay at or under. The ratio is ours per
        /// the anchor's, or the anchor's per ours where <paramref name="moreIsBetter"/> (extents removed).
        /// </summary>
        internal static void Add(string comparison, double ours, double anchor, double target = 1.0, string unit = "s", bool moreIsBetter = false) =>
            Rows.Add((comparison, ours, anchor, target, unit, moreIsBetter));

        internal static void Print()
        {
            Console.WriteLine();
            Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd}, kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version} (medians)");
            Console.WriteLine();
            Console.WriteLine("| comparison | ours | anchor | ratio | target | met |");
            Console.WriteLine("|---|---:|---:|---:|---:|:---:|");
            foreach ((string comparison, double ours, double anchor, double target, string unit, bool moreIsBetter) in Rows)
            {
                double ratio = moreIsBetter ? anchor / Math.Max(1e-9, ours) : ours / anchor;
                string F(double v) => unit switch
                {
                    "extents" => v.ToString("N0", CultureInfo.InvariantCulture) + " extents",
                    "bytes" => (v / 1024).ToString("F1", CultureInfo.InvariantCulture) + " KiB",
                    "MiB/s" => v.ToString("N0", CultureInfo.InvariantCulture) + " MiB/s",
                    _ => v < 1 ? v.ToString("F3", CultureInfo.InvariantCulture) + " s" : v.ToString("F2", CultureInfo.InvariantCulture) + " s",
                };

                // A '|' in a comparison's name (a pipeline) would end the cell.
                Console.WriteLine($"| {comparison.Replace(" | ", " \\| ", StringComparison.Ordinal)} | {F(ours)} | {F(anchor)} | {ratio.ToString("F2", CultureInfo.InvariantCulture)}× | ≤ {target.ToString("0.0#", CultureInfo.InvariantCulture)}× | {(ratio <= target ? "✓" : "✗")} |");
            }
        }
    }
}
