"""The commune's documents: its letterhead, apology letters for follow-up cases, and the
periodic report of the "Chính quyền thân thiện" model, as DOCX (and XLSX) that officials
edit and sign, laid out per Decree 30/2020/NĐ-CP."""
