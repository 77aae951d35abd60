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
        private static readonly List<(string Comparison, double Ours, double Anchor, double Target)> Rows = new();

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

        /// <summary>One comparison: our median time against the anchor's, and the ratio it must stay at or under.</summary>
        internal static void Add(string comparison, double ours, double anchor, double target = 1.0) => Rows.Add((comparison, ours, anchor, target));

        internal static void Print()
        {
            Console.WriteLine();
            Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd}, kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version} (medians)");
            Console.WriteLine();
            Console.WriteLine("| comparison | ours | anchor | ratio | target | met |");
            Console.WriteLine("|---|---:|---:|---:|---:|:---:|");
            foreach ((string comparison, double ours, double anchor, double target) in Rows)
            {
                double ratio = ours / anchor;
                string F(double s) => s < 1 ? s.ToString("F3", CultureInfo.InvariantCulture) + " s" : s.ToString("F2", CultureInfo.InvariantCulture) + " s";
                Console.WriteLine($"| {comparison} | {F(ours)} | {F(anchor)} | {ratio.ToString("F2", CultureInfo.InvariantCulture)}× | ≤ {target.ToString("0.0#", CultureInfo.InvariantCulture)}× | {(ratio <= target ? "✓" : "✗")} |");
            }
        }
    }
}
