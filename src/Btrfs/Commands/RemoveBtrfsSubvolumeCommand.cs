namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Remove-BtrfsSubvolume: deletes a subvolume or snapshot (SNAP_DESTROY_V2), refusing one in use.</summary>
    [Cmdlet(VerbsCommon.Remove, "BtrfsSubvolume", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "Remove-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class RemoveBtrfsSubvolumeCommand : FileCmdletBase
    {
        /// <summary>-WhatIf: each filesystem measured once per pipeline, and the ids named so far on it.</summary>
        private readonly Dictionary<Guid, (SubvolumeSpace Space, List<ulong> Named)> measured = new();

        /// <summary>
        /// The subvolumes this pipeline deleted (or, under -WhatIf, would delete) so far, nested ones included: one
        /// named again later (Get-BtrfsSubvolume -All lists a nested one after its parent) is passed over, not
        /// reported missing or counted twice. By UUID (objects), and by id for -Id (one filesystem).
        /// </summary>
        private readonly HashSet<Guid> coveredUuids = new();
        private readonly HashSet<ulong> coveredIds = new();

        private const string InputObjectSet = "InputObject";
        private const string IdSet = "Id";

        /// <summary>The subvolume the piped object being processed names (none: the bound -Uuid and -Id).</summary>
        private NamedSubvolume? expected;

        /// <summary>
        /// Subvolume objects from Get-BtrfsSubvolume or New-BtrfsSnapshot (piped): each by its Path, or, where no
        /// mount reaches it (Path null), by its Id on the filesystem of its FileSystemPath (root only); either way
        /// only if it is still the subvolume with the object's Uuid.
        /// </summary>
        [Parameter(ParameterSetName = InputObjectSet, Mandatory = true, ValueFromPipeline = true)]
        public BtrfsSubvolumeInfo[] InputObject { get; set; } = Array.Empty<BtrfsSubvolumeInfo>();

        /// <summary>
        /// Subvolumes by id (as Get-BtrfsSubvolume and btrfs subvolume list show them), on the filesystem of
        /// -FileSystemPath: also those no mount reaches (root only). One a mount reaches is deleted by its path.
        /// </summary>
        [Parameter(ParameterSetName = IdSet, Mandatory = true)]
        [ArgumentCompleter(typeof(SubvolumeIdCompleter))]
        public ulong[] Id { get; set; } = Array.Empty<ulong>();

        /// <summary>With -Id: any path on the filesystem.</summary>
        [Parameter(ParameterSetName = IdSet, Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string FileSystemPath { get; set; } = string.Empty;

        /// <summary>
        /// Only if the path leads to the subvolume with this UUID (bound from a piped object's Uuid: a
        /// deserialized one, one read back from JSON or CSV, or Measure-BtrfsSubvolume's): a path renamed,
        /// replaced or mounted over since the object was made is refused (SubvolumeReplaced). A value that
        /// is not a UUID (empty too) is refused (InvalidArgument), never taken as none.
        /// </summary>
        [Parameter(ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
        [Parameter(ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
        public SubvolumeUuid? Uuid { get; set; }

        /// <summary>Also delete the subvolumes nested in it (deepest first); without it a subvolume with nested ones is refused.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>Wait until the kernel's cleaner has freed the space (SUBVOL_SYNC_WAIT), so the free space can be measured right after.</summary>
        [Parameter]
        public SwitchParameter Wait { get; set; }

        /// <summary>
        /// Not root: delete although other users' processes, which this user cannot see in /proc, might have
        /// files open in it (without it, refused as InUseUnknown). Never overrides a use that is seen.
        /// </summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>Write the deleted subvolumes' objects (as they were).</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (ParameterSetName == IdSet)
            {
                EachSubvolumeId(Id, FileSystemPath, (on, id) =>
                {
                    if (!AlreadyCovered(coveredIds.Contains(id), $"subvolume {id}"))
                    {
                        Remove(SubvolumeRemover.PlanById(on, id, Recurse.IsPresent, AssumeNotInUse.IsPresent), NamedSubvolume.Any);
                    }
                });
            }
            else if (ParameterSetName == InputObjectSet)
            {
                EachSubvolume(
                    InputObject,
                    "delete",
                    (path, s) =>
                    {
                        if (AlreadyCovered(coveredUuids.Contains(s.Uuid), path))
                        {
                            return true;
                        }

                        expected = NamedSubvolume.Of(s);
                        try
                        {
                            return ProcessOne(path);
                        }
                        finally
                        {
                            expected = null;
                        }
                    },
                    (on, s) =>
                    {
                        if (!AlreadyCovered(coveredUuids.Contains(s.Uuid), s.TopLevelPath ?? $"subvolume {s.Id}"))
                        {
                            Remove(SubvolumeRemover.PlanById(on, s.Id, Recurse.IsPresent, AssumeNotInUse.IsPresent), NamedSubvolume.Of(s));
                        }
                    });
            }
            else
            {
                base.ProcessRecord();
            }
        }

        /// <inheritdoc/>
        private protected override bool ErrorsTargetTheInput => true;

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            NamedSubvolume named = expected ?? SubvolumeUuid.Named(this, Uuid, "delete", path, "Nothing was deleted", PipedPathAttribute.UuidOf(CurrentInputText));

            // A piped listing read back (Import-Clixml, Import-Csv) binds here: one of its subvolumes that went with one
            // named before it in this pipeline (-Recurse) is passed over, as a live object is.
            if (named.Uuid != Guid.Empty && AlreadyCovered(coveredUuids.Contains(named.Uuid), path))
            {
                return;
            }

            Remove(SubvolumeRemover.Plan(path, Recurse.IsPresent, AssumeNotInUse.IsPresent), named);
        }

        /// <summary>Deletes what <paramref name="taken"/> planned (disposing it), if it is still the subvolume <paramref name="named"/> and ShouldProcess agrees.</summary>
        private void Remove(SubvolumeRemover taken, NamedSubvolume named)
        {
            using SubvolumeRemover plan = taken;
            named.Check(plan.Subvolume.Id, plan.Subvolume.Uuid, "delete", plan.Label, "Nothing was deleted");

            // What it frees, for -WhatIf and for the question asked before (before: the question left it out, although
            // the user deciding is the one it is for; a hostile test). Not measured where nothing is asked (-Confirm:$false).
            string action = SubvolumeRemover.Describe(plan.Subvolume, plan.Nested.Count);
            if (WhatIfInEffect || !ConfirmSwitchedOff)
            {
                action += WouldFree(plan);
            }

            if (!Preferences.ShouldProcess(this, plan.Subvolume.Path ?? plan.Label, action))
            {
                if (WhatIfInEffect)
                {
                    Named(plan.FileSystem, plan.Ids); // what would be deleted counts for the next ones' "with those named before it"
                    foreach (BtrfsSubvolumeInfo one in plan.Nested.Prepend(plan.Subvolume))
                    {
                        Cover(one);
                    }
                }

                return; // declined: not counted with the next ones (a review: the next question counted it)
            }

            (Guid fs, List<ulong> ids) = (plan.FileSystem, plan.Ids); // before the run, which closes what the plan holds
            plan.Run(Wait.IsPresent, deleted =>
            {
                Cover(deleted);
                WriteVerbose($"Deleted subvolume {deleted.Path ?? deleted.Name} (id {deleted.Id}).");
                if (PassThru.IsPresent)
                {
                    WriteObject(deleted);
                }
            }, StopToken);
            Named(fs, ids); // deleted: counted with the next ones (not when declined or refused: a review)
        }

        private void Cover(BtrfsSubvolumeInfo subvolume)
        {
            // The nil UUID is no one's identity (an old top level's, an old item's as listed): one such subvolume deleted
            // must not make every later one named with it "covered" (a review).
            if (subvolume.Uuid != Guid.Empty)
            {
                coveredUuids.Add(subvolume.Uuid);
            }

            coveredIds.Add(subvolume.Id);
        }

        /// <summary>True (and says so) when <paramref name="covered"/>: the subvolume went (or would go) with one named before it in this pipeline.</summary>
        private bool AlreadyCovered(bool covered, string what)
        {
            if (covered)
            {
                WriteVerbose(WhatIfInEffect
                    ? $"Passing over {what}: it would be deleted with a subvolume named before it in this pipeline."
                    : $"Passing over {what}: it was deleted with a subvolume named before it in this pipeline.");
            }

            return covered;
        }

        /// <summary>
        /// ", which would free N bytes" for -WhatIf and the question (the subvolume and the nested ones going with it, as of
        /// the last commit; after the first, also what all named so far on that filesystem would free
        /// together, which is more when they share with each other), or why that is not known.
        /// </summary>
        /// <summary>Counts the subvolumes <paramref name="ids"/> deleted (or that would be, under -WhatIf) with those named after them, where their filesystem was measured.</summary>
        private void Named(Guid fs, List<ulong> ids)
        {
            if (measured.TryGetValue(fs, out var m))
            {
                m.Named.AddRange(ids);
            }
        }

        private string WouldFree(SubvolumeRemover plan)
        {
            try
            {
                Guid fs = plan.FileSystem;
                if (!measured.TryGetValue(fs, out var m))
                {
                    m = (plan.MeasureFileSystem(StopToken), new List<ulong>());
                    measured[fs] = m;
                }

                List<ulong> ids = plan.Ids;
                ulong frees = m.Space.Of(ids).Exclusive;
                string text = string.Format(CultureInfo.InvariantCulture, ", which would free {0} ({1} bytes", SizeFormatter.Format((long)frees), frees);
                if (m.Named.Count > 0)
                {
                    ulong all = m.Space.Of(m.Named.Concat(ids).ToList()).Exclusive;
                    text += string.Format(CultureInfo.InvariantCulture, "; with the {0} subvolume(s) named before it, {1} ({2} bytes)", m.Named.Count, SizeFormatter.Format((long)all), all);
                }

                return text + string.Format(CultureInfo.InvariantCulture, ", as of commit {0})", m.Space.Generation);
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
            {
                return " (what it would free can be measured by root only)";
            }
            catch (FileOperationException ex)
            {
                return " (what it would free could not be measured: " + ex.Message + ")";
            }
        }
    }
}
