namespace Btrfs.Commands
{
    using System;
    using System.Diagnostics;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>
    /// One Write-Progress bar, the only place this module writes progress records: a new record (hosts
    /// may keep the ones they were given) when the percentage moves, or with no percentage at most four
    /// a second; nothing before <c>notBefore</c> has passed (work that ends sooner shows no bar); and a
    /// Completed record at the end when anything was shown. <see cref="ProgressBars"/> and
    /// <see cref="ScanProgress"/> are the two shapes the cmdlets use.
    /// </summary>
    internal sealed class ProgressBar
    {
        private static readonly TimeSpan MinimumInterval = TimeSpan.FromMilliseconds(250);

        /// <summary>Each command's bars shown and not closed yet, in the order they were opened.</summary>
        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Cmdlet, System.Collections.Generic.List<ProgressBar>> Open = new();
        private readonly Cmdlet cmdlet;
        private readonly int id;
        private readonly int parentId;
        private readonly TimeSpan notBefore;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private int lastPercent = -1;
        private TimeSpan? lastShown;

        internal ProgressBar(Cmdlet cmdlet, int id, string activity, int parentId = -1, TimeSpan notBefore = default)
        {
            this.cmdlet = cmdlet;
            this.id = id;
            this.parentId = parentId;
            this.notBefore = notBefore;
            Activity = activity;
        }

        /// <summary>What the bar is about (a file's bar: its path).</summary>
        internal string Activity { get; set; }

        /// <summary>A record was written since the last <see cref="Restart"/>.</summary>
        internal bool Shown { get; private set; }

        /// <summary>Starts over (the next file): nothing shown, the clock at zero.</summary>
        internal void Restart()
        {
            if (Shown && Open.TryGetValue(cmdlet, out System.Collections.Generic.List<ProgressBar>? open))
            {
                open.Remove(this);
            }

            Shown = false;
            lastPercent = -1;
            lastShown = null;
            clock.Restart();
        }

        /// <summary>Writes <paramref name="status"/> at <paramref name="percent"/> (-1: unknown) when it says something new, or always with <paramref name="force"/>.</summary>
        internal void Show(string status, int percent, bool force = false)
        {
            TimeSpan now = clock.Elapsed;
            if (!force && (now < notBefore || (percent >= 0 ? percent == lastPercent : lastShown is TimeSpan last && now - last < MinimumInterval)))
            {
                return;
            }

            lastPercent = percent;
            lastShown = now;
            if (!Shown)
            {
                Shown = true;
                System.Collections.Generic.List<ProgressBar> open = Open.GetOrCreateValue(cmdlet);
                if (!open.Contains(this))
                {
                    open.Add(this);
                }
            }

            cmdlet.WriteProgress(Record(status, percent, ProgressRecordType.Processing));
        }

        /// <summary>Closes the bar (a Completed record) if it was shown.</summary>
        internal void Complete(string status)
        {
            if (Shown)
            {
                Shown = false;
                if (Open.TryGetValue(cmdlet, out System.Collections.Generic.List<ProgressBar>? open))
                {
                    open.Remove(this);
                }

                cmdlet.WriteProgress(Record(status, 100, ProgressRecordType.Completed));
            }
        }

        /// <summary>
        /// Closes every bar <paramref name="cmdlet"/> still shows, the last opened (a file's, under the run's) first:
        /// before an error that stops the command (-ErrorAction Stop), after which the command may write no record,
        /// so the host would keep showing its bars to the end of the script.
        /// </summary>
        internal static void CompleteAll(Cmdlet cmdlet)
        {
            if (Open.TryGetValue(cmdlet, out System.Collections.Generic.List<ProgressBar>? open))
            {
                for (int i = open.Count - 1; i >= 0; i--)
                {
                    open[i].Complete("Stopped");
                }
            }
        }

        /// <summary>A time for a bar: hh:mm:ss, with the days in front from one day on (d.hh:mm:ss, as TimeSpan writes them).</summary>
        internal static string Clock(TimeSpan t) => t.ToString(t.TotalDays >= 1 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>The percentage <paramref name="done"/> is of <paramref name="total"/> (100 when there is nothing to do).</summary>
        internal static int Percent(long done, long total) => total <= 0 ? 100 : (int)Math.Clamp(done * 100.0 / total, 0, 100);

        private ProgressRecord Record(string status, int percent, ProgressRecordType type)
        {
            var record = new ProgressRecord(id, Activity, status) { PercentComplete = percent, RecordType = type };
            if (parentId >= 0)
            {
                record.ParentActivityId = parentId;
            }

            return record;
        }
    }

    /// <summary>
    /// A run bar (files done) with a per-file bar under it (percent of the file's bytes), for the
    /// cmdlets that change files one after the other; Completed records at the end.
    /// </summary>
    internal sealed class ProgressBars
    {
        private readonly ProgressBar run;
        private readonly ProgressBar file;
        private int files;
        private long total;
        private string? unit;

        internal ProgressBars(Cmdlet cmdlet, string activity, int runId)
        {
            run = new ProgressBar(cmdlet, runId, activity);
            file = new ProgressBar(cmdlet, runId + 1, string.Empty, runId);
        }

        /// <summary>True once anything was written (so <see cref="Complete"/> closes the bars).</summary>
        internal bool Started => files > 0;

        /// <summary>
        /// Starts the bar of the next file (or tree), of <paramref name="totalBytes"/> bytes of work (or, with
        /// <paramref name="countOf"/>, that many of them: "files"). The run bar shows the file, and
        /// <paramref name="runPercent"/> and <paramref name="runNote"/> where the run knows how far it is
        /// (a scheduled run: its budget).
        /// </summary>
        internal void StartFile(string path, long totalBytes, string? countOf = null, int runPercent = -1, string? runNote = null)
        {
            files++;
            total = totalBytes;
            unit = countOf;
            file.Restart();
            file.Activity = path;
            run.Show($"File {files}: {path}{runNote}", runPercent, force: true);
            Report(0);
        }

        /// <summary>The run bar alone (between files: a scheduled run measuring its trees), when it says something new.</summary>
        internal void ShowRun(string status, int percent) => run.Show(status, percent);

        /// <summary>Reports the bytes done in the current file (written when the percentage moves).</summary>
        internal void Report(long done) =>
            file.Show(
                unit is null ? $"{SizeFormatter.Format(done)} of {SizeFormatter.Format(total)}" : $"{done:N0} of {total:N0} {unit}",
                (int)Math.Clamp(total <= 0 ? 100 : done * 100 / total, 0, 100));

        /// <summary>Closes the current file's bar.</summary>
        internal void EndFile() => file.Complete("Done");

        /// <summary>Closes both bars.</summary>
        internal void Complete()
        {
            EndFile();
            run.Complete($"{files} file(s)");
        }
    }

    /// <summary>
    /// The bar of a read-only scan over many files: files done (as a percentage once a tree's files
    /// were counted, otherwise at most four records a second) and bytes scanned; a Completed record at the end.
    /// </summary>
    internal sealed class ScanProgress
    {
        private readonly ProgressBar bar;
        private long files;
        private long bytes;
        private long total = -1;

        internal ScanProgress(Cmdlet cmdlet, string activity, int id) => bar = new ProgressBar(cmdlet, id, activity);

        /// <summary>A tree of <paramref name="fileCount"/> files starts: the percentage counts its files.</summary>
        internal void StartTree(long fileCount)
        {
            total = fileCount;
            files = 0;
        }

        /// <summary>One file is done (measured or failed), <paramref name="size"/> bytes of it scanned.</summary>
        internal void FileDone(string path, long size)
        {
            files++;
            bytes = SizeFormatter.AddSize(bytes, size);
            bar.Show($"{files} file(s), {SizeFormatter.Format(bytes)} scanned: {path}", total > 0 ? (int)Math.Min(100, files * 100 / total) : -1);
        }

        /// <summary>Closes the bar if it was shown.</summary>
        internal void Complete() => bar.Complete($"{files} file(s), {SizeFormatter.Format(bytes)}");
    }
}
