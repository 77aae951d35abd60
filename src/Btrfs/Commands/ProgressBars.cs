namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Kernel;

    /// <summary>
    /// A run bar (files done) with a per-file bar under it (percent of the file's bytes), each record
    /// a new object, written when the percentage moves, and Completed records at the end.
    /// </summary>
    internal sealed class ProgressBars
    {
        private readonly Cmdlet cmdlet;
        private readonly string activity;
        private readonly int runId;
        private readonly int fileId;
        private int files;
        private string current = string.Empty;
        private long total;
        private int lastPercent = -1;
        private bool fileOpen;

        internal ProgressBars(Cmdlet cmdlet, string activity, int runId)
        {
            this.cmdlet = cmdlet;
            this.activity = activity;
            this.runId = runId;
            fileId = runId + 1;
        }

        /// <summary>True once anything was written (so <see cref="Complete"/> closes the bars).</summary>
        internal bool Started => files > 0;

        /// <summary>Starts the bar of the next file, of <paramref name="totalBytes"/> bytes of work.</summary>
        internal void StartFile(string path, long totalBytes)
        {
            files++;
            current = path;
            total = totalBytes;
            lastPercent = -1;
            fileOpen = true;
            cmdlet.WriteProgress(new ProgressRecord(runId, activity, $"File {files}: {path}") { PercentComplete = -1 });
            Report(0);
        }

        /// <summary>Reports the bytes done in the current file (written when the percentage moves).</summary>
        internal void Report(long done)
        {
            int percent = total <= 0 ? 100 : (int)Math.Clamp(done * 100 / total, 0, 100);
            if (percent == lastPercent)
            {
                return;
            }

            lastPercent = percent;
            cmdlet.WriteProgress(new ProgressRecord(fileId, current, $"{Core.SizeFormatter.Format(done)} of {Core.SizeFormatter.Format(total)}")
            {
                ParentActivityId = runId,
                PercentComplete = percent,
            });
        }

        /// <summary>Closes the current file's bar.</summary>
        internal void EndFile()
        {
            if (!fileOpen)
            {
                return;
            }

            fileOpen = false;
            cmdlet.WriteProgress(new ProgressRecord(fileId, current, "Done") { ParentActivityId = runId, PercentComplete = 100, RecordType = ProgressRecordType.Completed });
        }

        /// <summary>Closes both bars.</summary>
        internal void Complete()
        {
            if (!Started)
            {
                return;
            }

            EndFile();
            cmdlet.WriteProgress(new ProgressRecord(runId, activity, $"{files} file(s)") { PercentComplete = 100, RecordType = ProgressRecordType.Completed });
        }
    }
}

namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;

    /// <summary>
    /// The bar of a read-only scan over many files: files done (as a percentage once a tree's files
    /// were counted, otherwise at most four records a second) and bytes scanned; a Completed record at the end.
    /// </summary>
    internal sealed class ScanProgress
    {
        private readonly Cmdlet cmdlet;
        private readonly string activity;
        private readonly int id;
        private long files;
        private long bytes;
        private long total = -1;
        private int lastPercent = -1;
        private DateTime lastReport;

        internal ScanProgress(Cmdlet cmdlet, string activity, int id)
        {
            this.cmdlet = cmdlet;
            this.activity = activity;
            this.id = id;
        }

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
            bytes += size;
            int percent = total > 0 ? (int)Math.Min(100, files * 100 / total) : -1;
            DateTime now = DateTime.UtcNow;
            if (total > 0 ? percent == lastPercent : (now - lastReport).TotalMilliseconds < 250)
            {
                return;
            }

            lastPercent = percent;
            lastReport = now;
            cmdlet.WriteProgress(new ProgressRecord(id, activity, $"{files} file(s), {Core.SizeFormatter.Format(bytes)} scanned: {path}") { PercentComplete = percent });
        }

        /// <summary>Closes the bar if it was shown.</summary>
        internal void Complete()
        {
            if (lastPercent >= 0 || lastReport != default)
            {
                cmdlet.WriteProgress(new ProgressRecord(id, activity, $"{files} file(s), {Core.SizeFormatter.Format(bytes)}") { PercentComplete = 100, RecordType = ProgressRecordType.Completed });
            }
        }
    }
}
