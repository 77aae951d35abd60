namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>The shared body of ConvertTo-NoCow and ConvertFrom-NoCow: they differ only in direction.</summary>
    /// <remarks>
    /// Each replaced file keeps its old inode under a hidden name and a lease for a grace of 50 ms after the
    /// exchange of names (see <see cref="PendingReplacement"/>). The run's settler waits those graces out on
    /// a thread of its own while the next files are copied; a file's result (its status object, or its
    /// error if the exchange had to be undone) is written when its grace is over, in the order the files
    /// came (any other error or warning first writes the results before it), with at most
    /// <see cref="MostSettling"/> files waiting. Each grace is waited out before the next file with
    /// -PassThru (whatever takes the objects may stop the pipeline after any of them: Select-Object -First,
    /// also through a function), when a message ends the pipeline or asks (-ErrorAction or -WarningAction
    /// Stop or Inquire), and when each file is confirmed.
    /// </remarks>
    public abstract class NoCowConversionCommandBase : RecursiveFileCmdletBase, IDisposable
    {
        private const int MostSettling = 16;
        private readonly RewriteSession session = new();
        private readonly Queue<Settling> settling = new();
        private readonly ConvertedLinks links = new();
        private ProgressBars? bars;
        private bool? overlapping;

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

        /// <summary>
        /// Waits until every replacement handed to the settler has settled and syncs the directories of those
        /// that went through; after Ctrl+C (or a command after this one stopping the pipeline) their results
        /// are not written.
        /// </summary>
        public void Dispose()
        {
            while (settling.Count > 0)
            {
                Settling s = settling.Dequeue();
                if (s.Pending is not null)
                {
                    s.Pending.Dispose();
                    if (s.Pending.Failure is null)
                    {
                        try
                        {
                            s.Plan.SyncDirectory();
                        }
                        catch (FileOperationException)
                        {
                            // Nowhere to say it any more; the file is in place.
                        }
                    }
                }

                s.Plan.Dispose();
            }

            session.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <inheritdoc/>
        private protected override void BeforeError() => Drain(all: true);

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
                if (entry.Kind == WalkEntryKind.Directory)
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
                && Preferences.ShouldProcess(this, path, ToNoCow ? "Set the NOCOW attribute on the directory, so new files in it are NOCOW" : "Clear the NOCOW attribute of the directory, so new files in it are COW"))
            {
                NoCowAttribute.Apply(dir, flags, ToNoCow);
                WriteVerbose($"Directory '{path}' is now {State}.");
            }
        }

        /// <summary>
        /// Whether graces overlap the next files (see the remarks): not with -PassThru, not when a message ends
        /// the pipeline or asks, not when each file is confirmed.
        /// </summary>
        private bool Overlapping => overlapping ??= !(PassThru.IsPresent
            || Preferences.MessagesStop(this)
            || !(ConfirmSwitchedOff || WhatIfInEffect));

        private void ConvertOne(string path, FileLocation? walked = null)
        {
            Drain(all: false);
            if (walked is null)
            {
                ThrowIfDirectoryWithoutRecurse(path, Recursing, "convert", "mark it and convert the files below it, or use Set-NoCow to mark only the directory");
            }

            if (session.IsOwnTemporaryName(System.IO.Path.GetFileName(path)))
            {
                WriteVerbose($"Skipping '{path}': the hidden name this run gave a file it is replacing.");
                return;
            }

            // What a killed run of this module left (removed by the first rewrite in the directory, or gone already).
            if (walked is { } listed && RewriteSession.IsLeftover(listed))
            {
                WriteVerbose($"Skipping '{path}': what a killed run of this module left. A later rewrite in its directory by the user who owns it (or by root) removes it where it can prove that (unchanged, and nobody has it open); otherwise it stays until removed by hand.");
                return;
            }

            Action<string> notice = n =>
            {
                Drain(all: true); // in order: the results of the files before it first
                WriteWarning(n);
            };

            // Opening a file in its grace (the old one, or the new one under its name) would count as someone
            // opening it: such a file settles first.
            FileStatus? target = settling.Count > 0 || links.Count > 0
                ? (walked is { } at ? FileStatus.OfAt(at.Directory, at.Name) : FileStatus.OfPath(path, followLinks: false))
                : null;
            if (settling.Count > 0 && target is FileStatus current && settling.Any(s => s.Holds(current)))
            {
                Drain(all: true);
            }

            // Another name of a hard-linked file this walk converted: made a link of the converted file, not a copy.
            if (target is FileStatus other && links.Find(other) is ConvertedLink twin)
            {
                try
                {
                    Relink(path, walked, twin);
                }
                finally
                {
                    links.Met(twin);
                }

                return;
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
                    settling.Enqueue(new Settling(plan, null, path));
                    queued = true;
                    return;
                }

                if (plan.Warnings.Count > 0)
                {
                    Drain(all: true); // in order: the results of the files before it first
                    foreach (string warning in plan.Warnings)
                    {
                        WriteWarning(warning);
                    }
                }

                string action = $"Rewrite {SizeFormatter.Format(plan.DataBytes)} of data (file size {SizeFormatter.Format(plan.Size)}) into a new {State} file and replace the original; needs {SizeFormatter.Format(plan.NeededBytes)}{DataCopy.PreallocatedPastEndNote(plan.PreallocatedPastEndBytes, "the original")} of the {SizeFormatter.Format(plan.AvailableBytes)} free";
                if ((WhatIfInEffect || !ConfirmSwitchedOff) && plan.SharedBytes() is long shared and > 0)
                {
                    // What a preview, or the question asked, should say: the copy shares nothing (only looked at for
                    // -WhatIf or a confirmation prompt: one more FIEMAP pass). (Before: the prompt did not say it.)
                    action += $"; {SizeFormatter.Format(shared)} it shares now with reflink copies or snapshots stops being shared (the new file holds its own copy, and the space stays used while they keep theirs)";
                }

                if (!Preferences.ShouldProcess(this, path, action))
                {
                    if (WhatIfInEffect && plan.Original.Links > 1)
                    {
                        // Previewed: a later name of it is previewed as the link it would be made (nothing is compared).
                        links.Add(new ConvertedLink(path, plan.Original with { Links = plan.Original.Links - 1 }, null));
                    }

                    return;
                }

                bool alone = !Overlapping || plan.SettlesBeforeNext;
                if (alone)
                {
                    Drain(all: true);
                }

                bars!.StartFile(path, plan.DataBytes);
                try
                {
                    PendingReplacement pending = plan.Start(session, bars.Report, StopToken, notice);

                    // Queued at once: whatever happens next (Ctrl+C makes every write throw), Dispose waits it out.
                    settling.Enqueue(new Settling(plan, pending, path));
                    queued = true;
                    if (!alone && !pending.IsSettled)
                    {
                        session.Settler.Add(pending);
                    }
                }
                finally
                {
                    bars.EndFile();
                }

                if (alone)
                {
                    Drain(all: true);
                }
            }
            finally
            {
                if (!queued)
                {
                    plan.Dispose();
                }
            }
        }

        /// <summary>
        /// Makes <paramref name="path"/> (another name of the file converted into <paramref name="twin"/>) a hard link of
        /// the converted file, waited out at once: nothing is copied, and the names stay links of one file.
        /// </summary>
        private void Relink(string path, FileLocation? walked, ConvertedLink twin)
        {
            Drain(all: true);
            var options = new NoCowConversionOptions { AssumeNotInUse = AssumeNotInUse.IsPresent, LinkTo = twin };
            NoCowConversion plan = walked is { } location ? NoCowConversion.Prepare(location, ToNoCow, options) : NoCowConversion.Prepare(path, ToNoCow, options);
            bool queued = false;
            try
            {
                if (plan.AlreadyInState
                    || !Preferences.ShouldProcess(this, path, $"Replace the old file under this name with a link of '{twin.Path}', the {State} file this run converted it into under that name (nothing is copied; both must still hold the same data)"))
                {
                    return;
                }

                PendingReplacement pending = plan.StartRelink(session, StopToken, n =>
                {
                    Drain(all: true);
                    WriteWarning(n);
                });
                settling.Enqueue(new Settling(plan, pending, path) { LinkOf = twin });
                queued = true;
                Drain(all: true);
            }
            finally
            {
                if (!queued)
                {
                    plan.Dispose();
                }
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
                    if (s.Pending is null)
                    {
                        WriteVerbose($"'{s.Path}' is already {State}; skipped (not rewritten).");
                    }
                    else
                    {
                        s.Plan.Complete(s.Pending);
                        if (s.LinkOf is ConvertedLink twin)
                        {
                            WriteVerbose($"'{s.Path}' is now {State}: a link of '{twin.Path}', the file it was converted into under that name.");
                        }
                        else
                        {
                            WriteVerbose($"'{s.Path}' is now {State}: {SizeFormatter.Format(s.Plan.DataBytes)} rewritten.");
                            if (s.Plan.Original.Links > 1 && s.Pending.Copy is FileStatus copy)
                            {
                                // The old file as it is now that the new one has its name (its other names counted): a later
                                // name is linked only while it still leads to it and the two files hold the same.
                                links.Add(new ConvertedLink(s.Path, s.Plan.OriginalNow(), copy));
                            }
                        }
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
        private sealed record Settling(NoCowConversion Plan, PendingReplacement? Pending, string Path)
        {
            /// <summary>The name was made a link of this converted file (another name of the same old file).</summary>
            internal ConvertedLink? LinkOf { get; init; }

            /// <summary>True when <paramref name="file"/> is this file's original or its new copy.</summary>
            internal bool Holds(in FileStatus file) => Plan.IsOriginal(file) || (Pending?.Copy is FileStatus copy && copy.SameInode(file));
        }
    }
}
