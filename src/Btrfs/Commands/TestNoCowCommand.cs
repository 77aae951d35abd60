namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>Test-NoCow: is NOCOW really in effect? One [bool] per item, or with -Detailed the facts and the reason.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "NoCow", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Test-NoCow.md")]
    [OutputType(typeof(bool), typeof(NoCowStatus))]
    public sealed class TestNoCowCommand : FileCmdletBase
    {
        /// <summary>Emit a NoCowStatus object per item instead of a boolean.</summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            NoCowStatus status = NoCowInspector.Inspect(path);
            WriteVerbose($"{path}: {status.ReasonText}");
            WriteObject(Detailed.IsPresent ? status : status.IsNoCow);
        }
    }
}
