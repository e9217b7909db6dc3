# Reference intervals for rates (0/1 items) from R's survey package, for
# tests/analysis/test_reference.py::test_rate_intervals_match_r_svyciprop_logit.
# Run from this folder: Rscript make_rate_reference.R   (R 4.2, survey 4.1.1 from Debian packages)
#
# The rates are derived deterministically from small_responses.csv: a_q03 = (q03 >= 100),
# b_q07 = (q07 >= 80) (blank where the item is blank: don't know), c_score = (score >= 85).
# For every domain d (community: a raking margin; street: not one) this computes what
# svyby(~y, ~d, design, svyciprop, method = "logit") computes for that domain, one domain at a
# time so that one failing domain does not stop the others:
#   svyciprop(~y, subset(design, d == value), method = "logit")
# Columns: logit_low/high (method "logit": svyglm(y ~ 1, quasibinomial) + confint(ddf = degf)),
# xlogit_low/high (method "xlogit": the same interval by the delta method, without a glm fit),
# p (svymean), df (degf of the domain's design), converged (the glm's fitted proportion equals
# svymean's to 1e-8: survey 4.1.1 rescales weights to mean 1 over the whole design, so in small
# domains of a large design the glm's weights are large and its IRLS can diverge, giving 0 or
# NaN; such domains say converged = FALSE and are compared on xlogit only).
suppressMessages(library(survey))
r <- read.csv("small_responses.csv", colClasses = "character")
items <- grep("^q[0-9]+$", names(r), value = TRUE)
for (i in items) r[[i]] <- as.numeric(r[[i]])
r$score <- rowMeans(r[, items], na.rm = TRUE)
r <- r[!is.nan(r$score), ]
r$a_q03 <- as.numeric(r$q03 >= 100)
r$b_q07 <- as.numeric(r$q07 >= 80)
r$c_score <- as.numeric(r$score >= 85)
m <- read.csv("small_margins.csv", colClasses = c("character", "character", "numeric"))
pm <- function(v) { x <- m[m$variable == v, ]; d <- data.frame(x$category, x$total); names(d) <- c(v, "Freq"); d }
d <- svydesign(ids = ~1, weights = ~1, data = r)
dr <- rake(d, list(~community, ~sex, ~age_band), list(pm("community"), pm("sex"), pm("age_band")),
           control = list(maxit = 100, epsilon = 1e-11))
rows <- list()
for (rate in c("a_q03", "b_q07", "c_score")) {
  f <- as.formula(paste0("~", rate))
  for (by in c("community", "street")) {
    for (value in sort(unique(r[[by]]))) {
      sub <- dr[r[[by]] == value, ]
      answered <- sum(!is.na(r[[rate]][r[[by]] == value]))
      if (answered == 0) next
      mean <- svymean(f, sub, na.rm = TRUE)
      p <- coef(mean)[[1]]
      lg <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "logit")), error = function(e) NULL)
      xl <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "xlogit", na.rm = TRUE)), error = function(e) NULL)
      ci <- if (is.null(lg)) c(NA, NA) else as.numeric(attr(lg, "ci"))
      xci <- if (is.null(xl)) c(NA, NA) else as.numeric(attr(xl, "ci"))
      ok <- !is.null(lg) && is.finite(coef(lg)[[1]]) && abs(coef(lg)[[1]] - p) < 1e-8 && all(is.finite(ci))
      rows[[length(rows) + 1]] <- data.frame(
        rate = rate, by = by, domain = value, n = answered, respondents = sum(r[[by]] == value),
        df = degf(sub), p = p, se = SE(mean)[[1]], logit_low = ci[1], logit_high = ci[2],
        xlogit_low = xci[1], xlogit_high = xci[2], converged = ok)
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, "small_r_rate_intervals.csv", row.names = FALSE)
cat(sprintf("%d domains, %d with a converged logit fit\n", nrow(out), sum(out$converged)))
