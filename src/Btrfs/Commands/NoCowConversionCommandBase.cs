namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>The shared body of ConvertTo-NoCow and ConvertFrom-NoCow: they differ only in direction.</summary>
    /// <remarks>
    /// Each replaced file keeps its old inode under a hidden name and a lease for a grace of 50 ms after the
    /// exchange of names (see <see cref="PendingReplacement"/>). The run's settler waits those graces out on
    /// a thread of its own while the next files are copied; a file's result (its status object, or its
    /// error if the exchange had to be undone) is written when its grace is over, in the order the files
    /// came, with at most <see cref="MostSettling"/> files waiting.
    /// </remarks>
    public abstract class NoCowConversionCommandBase : RecursiveFileCmdletBase, IDisposable
    {
        private const int MostSettling = 16;
        private readonly RewriteSession session = new();
        private readonly Queue<Settling> settling = new();
        private ProgressBars? bars;

        /// <summary>Convert a file with more than one hard link (only this name gets the new file).</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>
        /// Where the kernel cannot prove that no other process has the file open (no write lease: you
        /// are not the owner, or leases are disabled), go on on the /proc scan alone. A file found in use
        /// is still refused.
        /// </summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>Emit the Test-NoCow -Detailed object of each file afterwards.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>True for ConvertTo-NoCow.</summary>
        private protected abstract bool ToNoCow { get; }

        /// <summary>ConvertTo-NoCow: drop compression instead of refusing a compressed file.</summary>
        private protected virtual bool DropCompressionRequested => false;

        private string State => ToNoCow ? "NOCOW" : "COW";

        /// <inheritdoc/>
        protected override void BeginProcessing() => bars = new ProgressBars(this, ToNoCow ? "ConvertTo-NoCow" : "ConvertFrom-NoCow", ToNoCow ? 0x4E43 : 0x4346);

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            Drain(all: true);
            bars?.Complete();
        }

        /// <summary>Waits until every replacement handed to the settler has settled (after Ctrl+C their results are not written).</summary>
        public void Dispose()
        {
            while (settling.Count > 0)
            {
                Settling s = settling.Dequeue();
                s.Pending?.Dispose();
                s.Plan.Dispose();
            }

            session.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ConvertOne(path);
                return;
            }

            ForEachInTree(path, entry =>
            {
                if (session.IsOwnTemporaryName(System.IO.Path.GetFileName(entry.Path)))
                {
                    WriteVerbose($"Skipping '{entry.Path}': the hidden name this run gave a file it is replacing.");
                }
                else if (entry.Kind == WalkEntryKind.Directory)
                {
                    MarkDirectory(entry);
                }
                else
                {
                    ConvertOne(entry.Path, entry.Location);
                }
            });
        }

        private void MarkDirectory(WalkEntry entry)
        {
            string path = entry.Path;
            using OpenFile dir = NoCowAttribute.OpenForChange(entry, out InodeFlags flags);
            if (NoCowAttribute.Check(dir, flags, ToNoCow, skipNonEmpty: false) == NoCowChange.Changed
                && ShouldProcess(path, ToNoCow ? "Set the NOCOW attribute on the directory, so new files in it are NOCOW" : "Clear the NOCOW attribute of the directory, so new files in it are COW"))
            {
                NoCowAttribute.Apply(dir, flags, ToNoCow);
                WriteVerbose($"Directory '{path}' is now {State}.");
            }
        }

        private void ConvertOne(string path, FileLocation? walked = null)
        {
            Drain(all: false);
            if (walked is null)
            {
                ThrowIfDirectoryWithoutRecurse(path, Recursing, "convert", "mark it and convert the files below it, or use Set-NoCow to mark only the directory");
            }

            var options = new NoCowConversionOptions
            {
                AllowHardLinks = Force.IsPresent,
                AssumeNotInUse = AssumeNotInUse.IsPresent,
                DropCompression = DropCompressionRequested,
            };
            NoCowConversion plan = walked is { } location ? NoCowConversion.Prepare(location, ToNoCow, options) : NoCowConversion.Prepare(path, ToNoCow, options);
            bool queued = false;
            try
            {
                if (plan.AlreadyInState)
                {
                    WriteVerbose($"'{path}' is already {State}; skipped (not rewritten).");
                    settling.Enqueue(new Settling(plan, null, path));
                    queued = true;
                    return;
                }

                foreach (string warning in plan.Warnings)
                {
                    WriteWarning(warning);
                }

                string action = $"Rewrite {SizeFormatter.Format(plan.DataBytes)} of data (file size {SizeFormatter.Format(plan.Size)}) into a new {State} file and replace the original; needs {SizeFormatter.Format(plan.DataBytes)} of the {SizeFormatter.Format(plan.AvailableBytes)} free";
                if (!ShouldProcess(path, action))
                {
                    return;
                }

                if (plan.SettlesBeforeNext)
                {
                    Drain(all: true); // in order: the files before it first
                }

                PendingReplacement pending;
                bars!.StartFile(path, plan.DataBytes);
                try
                {
                    pending = plan.Start(session, bars.Report, StopToken, WriteWarning);
                }
                finally
                {
                    bars.EndFile();
                }

                if (!pending.IsSettled && !plan.SettlesBeforeNext)
                {
                    session.Settler.Add(pending);
                }

                settling.Enqueue(new Settling(plan, pending, path));
                queued = true;
            }
            finally
            {
                if (!queued)
                {
                    plan.Dispose();
                }
            }

            if (plan.SettlesBeforeNext)
            {
                Drain(all: true);
            }
        }

        /// <summary>
        /// Writes the results of the files whose grace is over, in the order they came: all of them with
        /// <paramref name="all"/> (waiting), else those settled at the head of the queue and, while more than
        /// <see cref="MostSettling"/> wait, the oldest (waiting for it).
        /// </summary>
        private void Drain(bool all)
        {
            while (settling.Count > 0 && (all || settling.Count > MostSettling || settling.Peek().Pending is not { IsSettled: false }))
            {
                Settling s = settling.Dequeue();
                try
                {
                    if (s.Pending is not null)
                    {
                        s.Plan.Complete(s.Pending);
                        WriteVerbose($"'{s.Path}' is now {State}: {SizeFormatter.Format(s.Plan.DataBytes)} rewritten.");
                    }

                    EmitStatus(s.Plan);
                }
                catch (FileOperationException ex)
                {
                    WriteError(ErrorRecords.From(ex));
                }
                finally
                {
                    s.Pending?.Dispose();
                    s.Plan.Dispose();
                }
            }
        }

        private void EmitStatus(NoCowConversion plan)
        {
            if (PassThru.IsPresent)
            {
                WriteObject(plan.Inspect());
            }
        }

        /// <summary>A file converted (or found in state) whose result is not written yet.</summary>
        private sealed record Settling(NoCowConversion Plan, PendingReplacement? Pending, string Path);
    }
}
