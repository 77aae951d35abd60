namespace Btrfs.Commands
{
    using System.Management.Automation;

    /// <summary>-WhatIf and -Confirm as a cmdlet sees them: given to it, or inherited from the script that called it.</summary>
    internal static class Preferences
    {
        /// <summary>-WhatIf given to the cmdlet, or to its caller ($WhatIfPreference), as ShouldProcess itself sees it.</summary>
        internal static bool WhatIfInEffect(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? w)
            ? w is SwitchParameter { IsPresent: true }
            : LanguagePrimitives.IsTrue(cmdlet.GetVariableValue("WhatIfPreference"));

        /// <summary>
        /// An error, warning or verbose message the cmdlet writes ends the pipeline or waits for an answer
        /// (-ErrorAction, -WarningAction, or the preference variables, Stop or Inquire).
        /// </summary>
        internal static bool MessagesStop(PSCmdlet cmdlet) =>
            Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("ErrorAction", out object? e) ? e : cmdlet.GetVariableValue("ErrorActionPreference"))
            || Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("WarningAction", out object? w) ? w : cmdlet.GetVariableValue("WarningPreference"))
            || (!cmdlet.MyInvocation.BoundParameters.ContainsKey("Verbose") && Stops(cmdlet.GetVariableValue("VerbosePreference"))); // -Verbose makes it Continue

        private static bool Stops(object? preference) =>
            LanguagePrimitives.TryConvertTo(preference, out ActionPreference p) && p is ActionPreference.Stop or ActionPreference.Inquire or ActionPreference.Suspend;

        /// <summary>-Confirm:$false given to the cmdlet, or $ConfirmPreference 'None' from a caller given -Confirm:$false: questions asked with ShouldContinue are skipped.</summary>
        internal static bool ConfirmSwitchedOff(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("Confirm", out object? c)
            ? c is SwitchParameter { IsPresent: false }
            : cmdlet.GetVariableValue("ConfirmPreference") is ConfirmImpact.None;
    }
}
