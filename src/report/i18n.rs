//! Report wording in English and French (operations teams say PCA/PRA). Tool output quoted
//! in a report (a drill's error, a failed backup's message) stays as the tool printed it.

use crate::evidence::readiness::{hours, Cause};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// # Errors
    /// A sentence naming the language when it is neither `en` nor `fr`.
    pub fn parse(s: &str) -> Result<Lang, String> {
        match s {
            "en" => Ok(Lang::En),
            "fr" => Ok(Lang::Fr),
            other => Err(format!("unknown report language '{other}': expected en or fr")),
        }
    }
}

/// A phrase by key.
pub fn t(lang: Lang, key: &str) -> &'static str {
    let (en, fr) = match key {
        "title" => ("Disaster recovery readiness report (DRP / PRA)", "Rapport de préparation au PRA / PCA"),
        "period" => ("Period", "Période"),
        "generated" => ("Generated", "Généré le"),
        "summary" => ("Summary", "Synthèse"),
        "job" => ("Asset (job)", "Actif (tâche)"),
        "readiness" => ("Readiness", "État de vérification"),
        "why" => ("Why", "Motif"),
        "sources" => ("Sources", "Sources"),
        "repository" => ("Repository", "Dépôt"),
        "rpo" => ("Recovery point (RPO)", "Point de reprise (RPO)"),
        "rto" => ("Recovery time (RTO)", "Délai de reprise (RTO)"),
        "target" => ("target", "objectif"),
        "current_age" => ("age of the last successful backup", "âge de la dernière sauvegarde réussie"),
        "worst_gap" => ("worst gap between successful backups", "pire intervalle entre sauvegardes réussies"),
        "last_measured" => ("last measured", "dernière mesure"),
        "worst_measured" => ("worst measured", "pire mesure"),
        "last_drill" => ("Last drill", "Dernier exercice de restauration"),
        "drills_interval" => ("Drills kept to their interval", "Exercices faits dans l'intervalle"),
        "success_rate" => ("Backup success rate", "Taux de réussite des sauvegardes"),
        "failures" => ("Failures in the period", "Échecs sur la période"),
        "restore_points" => ("Restore points available", "Points de restauration disponibles"),
        "last_check" => ("Last repository check", "Dernière vérification du dépôt"),
        "copies" => ("Copies (3-2-1)", "Copies (3-2-1)"),
        "required" => ("required", "exigées"),
        "newest_snapshot" => ("newest snapshot", "instantané le plus récent"),
        "unreached" => ("last copy failed", "dernière copie en échec"),
        "locked_until" => ("immutable (Object Lock) until", "immuable (Object Lock) jusqu'au"),
        "not_locked" => ("not immutable", "non immuable"),
        "ransomware_passed" => ("ransomware drill passed", "exercice rançongiciel réussi"),
        "ransomware_failed" => ("ransomware drill FAILED", "exercice rançongiciel en ÉCHEC"),
        "drill_passed" => ("drill passed", "exercice réussi"),
        "drill_failed" => ("drill FAILED", "exercice ÉCHOUÉ"),
        "never_drilled" => ("never drilled", "jamais exercée"),
        "verified_data" => ("Data verified by the last drill", "Données vérifiées au dernier exercice"),
        "timeline" => ("Timeline of backups and drills", "Chronologie des sauvegardes et exercices"),
        "rto_trend" => ("Recovery time of drills", "Durée de reprise des exercices"),
        "evidence" => ("Evidence", "Preuves"),
        "ledger" => ("Evidence ledger verification", "Vérification du registre de preuves"),
        "records" => ("records", "enregistrements"),
        "records_compared" => ("compared with their repository copies", "comparés aux copies du dépôt"),
        "chain_head" => ("chain head", "tête de chaîne"),
        "key" => ("signing key fingerprint", "empreinte de la clé de signature"),
        "reverify" => (
            "Re-verify with `rempart evidence verify`, or without rempart: `rempart evidence export -o evidence.jsonl` then `scripts/verify-evidence evidence.jsonl FINGERPRINT` with the signing key fingerprint above (docs/evidence.md).",
            "Pour revérifier : `rempart evidence verify`, ou sans rempart : `rempart evidence export -o evidence.jsonl` puis `scripts/verify-evidence evidence.jsonl EMPREINTE` avec l'empreinte de la clé de signature ci-dessus (docs/evidence.md).",
        ),
        "deficiencies" => ("Deficiencies and actions", "Écarts et actions"),
        "none" => ("none", "aucun"),
        "never" => ("never", "jamais"),
        "monitoring" => ("Monitoring", "Surveillance"),
        "monitoring_since" => ("since", "depuis"),
        "of_period" => ("of the period covered", "de la période couverte"),
        "not_monitored" => ("no run recorded in the period: nothing can be said of it", "aucune exécution enregistrée sur la période : rien ne peut en être dit"),
        "over_monitored" => ("over the monitored part only", "sur la seule partie surveillée"),
        "drills_list" => ("Drills of the period", "Exercices de la période"),
        "date" => ("date", "date"),
        "outcome" => ("outcome", "résultat"),
        "rto_col" => ("RTO target / measured", "RTO cible / mesuré"),
        "rpo_col" => ("RPO target / achieved", "RPO cible / atteint"),
        "target_col" => ("restored into", "restauré dans"),
        "axis_time" => ("time (UTC)", "temps (UTC)"),
        "axis_seconds" => ("recovery time (s)", "durée de reprise (s)"),
        "legend_backup_ok" => ("backup succeeded", "sauvegarde réussie"),
        "legend_backup_failed" => ("backup failed", "sauvegarde échouée"),
        "legend_drill_ok" => ("drill passed", "exercice réussi"),
        "legend_drill_failed" => ("drill failed", "exercice échoué"),
        "legend_rto" => ("RTO target", "RTO cible"),
        "legend_measured" => ("measured recovery time", "durée de reprise mesurée"),
        "legend_monitoring" => ("monitoring started", "début de la surveillance"),
        "row_backups" => ("backups", "sauvegardes"),
        "row_drills" => ("drills", "exercices"),
        "yes" => ("yes", "oui"),
        "no" => ("no", "non"),
        "met" => ("met", "respecté"),
        "missed" => ("MISSED", "NON RESPECTÉ"),
        "passed" => ("passed", "réussi"),
        "failed" => ("FAILED", "ÉCHEC"),
        "level" => ("level", "niveau"),
        "on" => ("on", "sur"),
        "segregated" => ("segregated: on another server than the source", "séparé : sur un autre serveur que la source"),
        "not_segregated" => ("isolated, but on the source's host or server (not segregated)", "isolé, mais sur l'hôte ou le serveur de la source (non séparé)"),
        "intact" => ("intact", "intègre"),
        "tampered" => ("TAMPERING FOUND", "FALSIFICATION DÉTECTÉE"),
        "not_verified_ledger" => ("not verified (repository unreachable)", "non vérifié (dépôt injoignable)"),
        "overdue" => ("overdue stretches", "retards"),
        "backup" => ("backup", "sauvegarde"),
        "drill" => ("drill", "exercice"),
        "oldest" => ("oldest", "plus ancien"),
        "newest" => ("newest", "plus récent"),
        "fleet_title" => ("Fleet readiness report (DRP / PRA)", "Rapport de préparation PRA / PCA de la flotte"),
        "host" => ("Host", "Hôte"),
        "hosts" => ("hosts", "hôtes"),
        "jobs" => ("jobs", "tâches"),
        "snapshots" => ("snapshots", "instantanés"),
        "last_backup" => ("Last successful backup", "Dernière sauvegarde réussie"),
        "pinned" => ("pinned", "épinglée"),
        "not_pinned" => ("NOT pinned: not counted", "NON épinglée : non comptée"),
        "read_added" => ("read / added", "lus / ajoutés"),
        "finding" => ("finding", "constat"),
        "no_evidence" => ("snapshots but no evidence chain: not counted", "des instantanés mais aucune chaîne de preuves : non compté"),
        "damaged" => ("Damaged objects", "Objets endommagés"),
        _ => ("?", "?"),
    };
    match lang {
        Lang::En => en,
        Lang::Fr => fr,
    }
}

/// The action for a deficiency code.
pub fn action(lang: Lang, code: &str) -> &'static str {
    let (en, fr) = match code {
        "no-backup" => ("No successful backup: run the backup step and fix its errors.", "Aucune sauvegarde réussie : lancer la sauvegarde et corriger ses erreurs."),
        "rpo-now" => ("The last successful backup is older than the RPO: back up now and check the schedule.", "La dernière sauvegarde réussie dépasse le RPO : sauvegarder maintenant et vérifier la planification."),
        "rpo-gap" => ("A gap between backups exceeded the RPO in the period: review the failures and the schedule.", "Un intervalle entre sauvegardes a dépassé le RPO : examiner les échecs et la planification."),
        "backup-failures" => ("Backups failed in the period: read their errors below and fix the cause.", "Des sauvegardes ont échoué : lire leurs erreurs ci-dessous et corriger la cause."),
        "never-drilled" => ("Never drilled: run `rempart drill JOB` and schedule drills.", "Jamais exercé : lancer `rempart drill JOB` et planifier les exercices."),
        "drill-failed" => ("The last drill failed: read its checks, fix the cause, drill again.", "Le dernier exercice a échoué : lire ses contrôles, corriger, recommencer."),
        "drill-due" => ("Readiness lapsed (drill overdue, below the required level, or job changed): drill again.", "La vérification a expiré (exercice en retard, niveau insuffisant ou tâche modifiée) : refaire un exercice."),
        "rto-exceeded" => ("A drill took longer than the RTO: speed up recovery or revise the objective.", "Un exercice a dépassé le RTO : accélérer la reprise ou revoir l'objectif."),
        "never-checked" => ("The repository was never checked: schedule `check`.", "Le dépôt n'a jamais été vérifié : planifier `check`."),
        "check-failed" => ("The last repository check found damage: run `rempart check` and repair.", "La dernière vérification a trouvé des dommages : lancer `rempart check` et réparer."),
        "copies-missing" => ("Fewer copies than [objectives] copies hold a snapshot within the RPO: run the copy step ('rempart run JOB --step copy') and fix what its errors name (3-2-1).", "Moins de copies que [objectives] copies détiennent un instantané dans le RPO : lancer l'étape de copie (« rempart run JOB --step copy ») et corriger ce que ses erreurs nomment (3-2-1)."),
        "immutability-unproven" => ("[objectives] immutable: no passing ransomware drill of the S3 copy within the drill interval: run 'rempart drill JOB --ransomware' (or schedule.ransomware) and fix what it names (docs/copies.md).", "[objectives] immutable : aucun exercice rançongiciel réussi de la copie S3 dans l'intervalle d'exercice : lancer « rempart drill JOB --ransomware » (ou schedule.ransomware) et corriger ce qu'il nomme (docs/copies.md)."),
        "not-segregated" => ("Drills restore onto the source's host or server (isolated, not segregated): for databases set [drill] server to another server; for files run drills from another host (DORA art. 12).", "Les exercices restaurent sur l'hôte ou le serveur de la source (isolés, non séparés) : pour les bases, définir [drill] server vers un autre serveur ; pour les fichiers, exercer depuis un autre hôte (DORA art. 12)."),
        _ => ("", ""),
    };
    match lang {
        Lang::En => en,
        Lang::Fr => fr,
    }
}

/// Why a job has its readiness, in `lang`.
pub fn reason(lang: Lang, cause: &Cause) -> String {
    if lang == Lang::En {
        return cause.english();
    }
    match cause {
        Cause::NeverDrilled => "jamais exercé".into(),
        Cause::LastDrillFailed { ended, error } => format!(
            "le dernier exercice ({ended}) a échoué : {}",
            error.as_deref().unwrap_or("l'exercice a échoué")
        ),
        Cause::LevelNotReached { required } => {
            format!("aucun exercice n'a encore atteint le niveau requis {required}")
        }
        Cause::Overdue { required, age_hours, interval } => format!(
            "le dernier exercice de niveau {required} a réussi il y a {}, au-delà de l'intervalle de {interval}",
            hours(*age_hours)
        ),
        Cause::JobChanged => "la définition de la tâche a changé depuis le dernier exercice réussi".into(),
        Cause::Passed { level, ended } => format!("exercice de niveau {level} réussi le {ended}"),
        Cause::EvidenceTampered { findings } => format!(
            "le registre de preuves a été altéré ({findings} constats ; « rempart evidence verify » les nomme)"
        ),
        Cause::RepositoryUnreachable { error } => {
            format!("le dépôt est illisible : la restauration ne peut pas être prouvée maintenant ({error})")
        }
        Cause::KeyNotPinned { fingerprint } => format!(
            "sa clé de preuve {fingerprint} n'est pas épinglée ici : ses enregistrements sont montrés mais ne prouvent rien tant qu'elle ne l'est pas ([evidence] pinned_keys ou --pin)"
        ),
        Cause::CopiesMissing { required, fresh, freshness } => format!(
            "{fresh} des {required} copies exigées détiennent un instantané de moins de {freshness} (3-2-1 non atteint)"
        ),
        Cause::ImmutabilityUnproven { last: None, .. } => {
            "l'immuabilité de la copie n'a jamais été prouvée : lancer « rempart drill JOB --ransomware »".into()
        }
        Cause::ImmutabilityUnproven { last: Some(when), failed: true, .. } => {
            format!("le dernier exercice rançongiciel ({when}) a échoué : la copie n'est pas prouvée immuable")
        }
        Cause::ImmutabilityUnproven { last: Some(when), failed: false, interval } => {
            format!("le dernier exercice rançongiciel ({when}) date de plus que l'intervalle d'exercice ({interval})")
        }
    }
}
