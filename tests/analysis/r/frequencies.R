# Reference values from R's survey package for per-question frequencies, numbers and cross-tabs
# (tests/analysis/test_frequencies.py). R is a reference only: the suite reads the CSV files this
# writes and does not need R.
#
#   cd tests/analysis/r && Rscript frequencies.R     (R 4.2, survey 4.1.1 from Debian's r-cran-survey)
#
# Writes into ../data:
# 1. freq_api_responses.csv, freq_api_margins.csv: R's data(apistrat) (stratified by school type,
#    fpc, base weight pw) raked to apipop's school counts by sch.wide and by comp.imp. Items: single
#    choices awards, yr_rnd, stype, api_band (api00 cut at 600/700/800); a multiple choice
#    `programs` (codes awards, both, yr_rnd or none, separated by spaces; blank where acs.core is
#    NA); numbers api00, enroll, acs_46 (NA in 66 schools).
# 2. freq_city_responses.csv, freq_city_margins.csv: a generated city: districts (strata) ->
#    streets (PSUs, fpc = streets in the district) -> households; base weights vary by street;
#    raked to community, sex and age band. Items: ratings q01, q02 (codes 1-5 and 9 = 不了解,
#    blank = not answered), a single choice `channel` (a-d), a multiple choice `problems`
#    (codes 1-6 separated by spaces), numbers `household` (integer) and `spend` (decimal).
# 3. freq_r_shares.csv: per (data, design, by, domain, item, choice): svymean of the choice's 0/1
#    indicator (blank where the item is blank) on subset(design, by == domain) with na.rm = TRUE:
#    share and SE; the same from svyby(~factor(item), ~by, design, svymean, na.rm = TRUE) for single
#    choices (share_factor, se_factor); svyciprop(method = "logit") and "xlogit" with R's default
#    df = degf(subset); n (chose it) and answered (answered the item).
# 4. freq_r_numbers.csv: svymean and svyquantile(~x, subset, c(0.25, 0.5, 0.75), na.rm = TRUE,
#    ci = TRUE) with its defaults (qrule "math", interval.type "mean": Woodruff), per domain.
# 5. freq_r_chisq.csv: svychisq(~rows + cols, design, statistic = "F") on the whole design and on
#    subset(design, by == domain): statistic, ndf, ddf, p as R gives them. survey 4.1.1 takes the
#    denominator df of a subset from the whole design (PSUs minus strata of every row); later
#    versions (svychisq's `nu <- degf(design)`) from the subset's own PSUs: ddf_degf and p_degf are
#    those, ndf * degf(subset) and pf(statistic, ndf, that, lower.tail = FALSE).
suppressMessages(library(survey))
out <- "../data"
ctl <- list(maxit = 500, epsilon = 1e-12)
pm <- function(m, v) { x <- m[m$variable == v, ]; d <- data.frame(x$category, x$total); names(d) <- c(v, "Freq"); d }

## 1. apistrat
data(api)
a <- apistrat
a$respondent_id <- sprintf("S%d", a$snum)
a$sch_wide <- as.character(a$sch.wide)
a$comp_imp <- as.character(a$comp.imp)
a$stype <- as.character(a$stype)
a$awards <- as.character(a$awards)
a$yr_rnd <- as.character(a$yr.rnd)
a$api_band <- as.character(cut(a$api00, c(0, 600, 700, 800, 1000), labels = c("lt600", "600s", "700s", "800plus")))
a$programs <- apply(cbind(ifelse(a$awards == "Yes", "awards", ""), ifelse(a$both == "Yes", "both", ""),
                          ifelse(a$yr.rnd == "Yes", "yr_rnd", "")), 1, function(x) paste(x[x != ""], collapse = " "))
a$programs[a$programs == ""] <- "none"
a$programs[is.na(a$acs.core)] <- NA
a$acs_46 <- a$acs.46
keep <- c("respondent_id", "stype", "fpc", "pw", "sch_wide", "comp_imp", "awards", "yr_rnd", "api_band", "programs",
          "api00", "enroll", "acs_46")
a <- a[, keep]
write.csv(a, file.path(out, "freq_api_responses.csv"), row.names = FALSE, na = "")
am <- rbind(data.frame(variable = "sch_wide", category = names(table(apipop$sch.wide)),
                       total = as.numeric(table(apipop$sch.wide))),
            data.frame(variable = "comp_imp", category = names(table(apipop$comp.imp)),
                       total = as.numeric(table(apipop$comp.imp))))
write.csv(am, file.path(out, "freq_api_margins.csv"), row.names = FALSE)

## 2. a generated city
set.seed(20261203)
ages <- c("18-29", "30-44", "45-59", "60+")
rows <- list(); k <- 0; comm_pop <- c()
for (d in 0:5) {
  district <- sprintf("D%d", d)
  N1 <- 8 + d
  n1 <- 3 + d %% 3
  for (s in seq_len(n1)) {
    street <- sprintf("%sS%d", district, s)
    M <- sample(2000:6000, 1)
    m <- sample(15:45, 1)
    smu <- rnorm(1, 0, 0.5)
    sex <- sample(c("M", "F"), m, replace = TRUE, prob = c(0.45, 0.55))
    age <- sample(ages, m, replace = TRUE, prob = c(0.15, 0.25, 0.3, 0.3))
    community <- sprintf("%sC%d", street, sample(1:2, m, replace = TRUE))
    lat <- smu + ifelse(sex == "F", 0.2, 0) + c(-0.3, -0.5, 0, 0.6)[match(age, ages)] + rnorm(m, 0, 1)
    rating <- function(shift) {
      v <- as.character(pmin(pmax(round(3.6 + lat + shift + rnorm(m, 0, 0.8)), 1), 5))
      v[runif(m) < 0.07] <- "9"
      v[runif(m) < 0.04] <- NA
      v
    }
    pr <- cbind(c(0.5, 0.3, 0.15, 0.05)[match(age, ages)], 0.25, 0.2, c(0.05, 0.2, 0.3, 0.4)[match(age, ages)])
    channel <- apply(pr, 1, function(p) sample(c("a", "b", "c", "d"), 1, prob = p))
    problems <- sapply(seq_len(m), function(i) {
      chosen <- which(runif(6) < c(0.35, 0.2, 0.15, 0.3, 0.1, 0.05) * exp(-lat[i] / 2))
      if (length(chosen) == 0) "6" else paste(chosen, collapse = " ")
    })
    problems[runif(m) < 0.1] <- NA
    household <- pmax(1, pmin(7, rpois(m, 2.2) + 1))
    spend <- round(exp(rnorm(m, 6 + 0.2 * lat, 0.6)), 1)
    spend[runif(m) < 0.12] <- NA
    k <- k + 1
    rows[[k]] <- data.frame(respondent_id = sprintf("P%d_%d", k, seq_len(m)), district = district, street = street,
                            community = community, sex = sex, age_band = age, streets_in_district = N1,
                            base_weight = (N1 / n1) * (M / m), q01 = rating(0), q02 = rating(-0.4),
                            channel = channel, problems = problems, household = household, spend = spend)
    for (cm in unique(community)) {
      comm_pop[cm] <- (if (cm %in% names(comm_pop)) comm_pop[[cm]] else 0) + (N1 / n1) * M * mean(community == cm)
    }
  }
}
r <- do.call(rbind, rows)
comm_pop <- round(comm_pop * exp(rnorm(length(comm_pop), 0, 0.1)))
total <- sum(comm_pop)
sex_total <- round(total * c(0.49, 0.51)); sex_total[2] <- total - sex_total[1]
age_total <- round(total * c(0.2, 0.28, 0.27, 0.25)); age_total[4] <- total - sum(age_total[1:3])
cm <- rbind(data.frame(variable = "community", category = names(comm_pop), total = as.numeric(comm_pop)),
            data.frame(variable = "sex", category = c("M", "F"), total = sex_total),
            data.frame(variable = "age_band", category = ages, total = age_total))
write.csv(r, file.path(out, "freq_city_responses.csv"), row.names = FALSE, na = "")
write.csv(cm, file.path(out, "freq_city_margins.csv"), row.names = FALSE)

## 3.-5. R's numbers
datasets <- list(
  api = list(data = a, margins = am, rake_on = c("sch_wide", "comp_imp"), by = c("stype", "awards"),
             single = c("awards", "yr_rnd", "stype", "api_band"), multi = c("programs"),
             numbers = c("api00", "enroll", "acs_46"),
             tables = list(c("awards", "api_band"), c("yr_rnd", "stype"), c("api_band", "stype")),
             designs = list(strata_fpc = list(ids = ~1, strata = ~stype, fpc = ~fpc, weights = ~pw),
                            simple = list(ids = ~1, strata = NULL, fpc = NULL, weights = NULL))),
  city = list(data = r, margins = cm, rake_on = c("community", "sex", "age_band"), by = c("district"),
              single = c("q01", "q02", "channel"), multi = c("problems"), numbers = c("household", "spend"),
              tables = list(c("q01", "channel"), c("channel", "age_band"), c("q02", "q01")),
              designs = list(one_stage = list(ids = ~street, strata = ~district, fpc = ~streets_in_district,
                                              weights = ~base_weight),
                             weights_only = list(ids = ~1, strata = NULL, fpc = NULL, weights = ~base_weight),
                             simple = list(ids = ~1, strata = NULL, fpc = NULL, weights = NULL)))
)
indicator_name <- function(item, choice) paste0("I__", item, "__", make.names(choice))
shares <- list(); numbers <- list(); tests <- list()
for (dname in names(datasets)) {
  ds <- datasets[[dname]]
  x <- ds$data
  choices <- list()
  for (item in ds$single) {
    choices[[item]] <- sort(unique(na.omit(x[[item]])))
    for (ch in choices[[item]]) x[[indicator_name(item, ch)]] <- as.numeric(x[[item]] == ch)
  }
  for (item in ds$multi) {
    parts <- strsplit(x[[item]], " ")
    choices[[item]] <- sort(unique(unlist(parts[!is.na(x[[item]])])))
    for (ch in choices[[item]]) {
      x[[indicator_name(item, ch)]] <- ifelse(is.na(x[[item]]), NA, as.numeric(sapply(parts, function(p) ch %in% p)))
    }
  }
  x$ALL <- "ALL"
  for (name in names(ds$designs)) {
    spec <- ds$designs[[name]]
    base <- if (is.null(spec$weights)) ~1 else spec$weights
    d <- svydesign(ids = spec$ids, strata = spec$strata, fpc = spec$fpc, weights = base, data = x, nest = TRUE)
    dr <- rake(d, lapply(ds$rake_on, function(v) as.formula(paste0("~", v))),
               lapply(ds$rake_on, function(v) pm(ds$margins, v)), control = ctl)
    tag <- data.frame(data = dname, design = name)
    for (by in c("ALL", ds$by)) {
      values <- sort(unique(as.character(x[[by]])))
      factor_means <- list()
      for (item in ds$single) {
        f <- as.formula(paste0("~factor(", item, ")"))
        factor_means[[item]] <- svyby(f, as.formula(paste0("~", by)), dr, svymean, na.rm = TRUE)
      }
      for (value in values) {
        inside <- as.character(x[[by]]) == value
        sub <- dr[inside, ]
        for (item in c(ds$single, ds$multi)) {
          answered <- sum(!is.na(x[[item]][inside]))
          if (answered == 0) next
          for (ch in choices[[item]]) {
            v <- indicator_name(item, ch)
            f <- as.formula(paste0("~", v))
            mean <- svymean(f, sub, na.rm = TRUE)
            lg <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "logit", na.rm = TRUE)), error = function(e) NULL)
            xl <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "xlogit", na.rm = TRUE)), error = function(e) NULL)
            ci <- if (is.null(lg)) c(NA, NA) else as.numeric(attr(lg, "ci"))
            xci <- if (is.null(xl)) c(NA, NA) else as.numeric(attr(xl, "ci"))
            ok <- !is.null(lg) && is.finite(coef(lg)[[1]]) && abs(coef(lg)[[1]] - coef(mean)[[1]]) < 1e-8 &&
              all(is.finite(ci))
            pf_ <- NA; sf_ <- NA
            if (item %in% ds$single) {
              fm <- factor_means[[item]]
              col <- paste0("factor(", item, ")", ch)
              row <- which(as.character(fm[[by]]) == value)
              if (col %in% names(fm) && length(row) == 1) {
                pf_ <- fm[row, col]
                sf_ <- fm[row, paste0("se.", col)]
              }
            }
            shares[[length(shares) + 1]] <- cbind(tag, data.frame(
              by = by, domain = value, item = item, choice = ch, share = coef(mean)[[1]], se = SE(mean)[[1]],
              share_factor = pf_, se_factor = sf_, df = degf(sub), logit_low = ci[1], logit_high = ci[2],
              xlogit_low = xci[1], xlogit_high = xci[2], converged = ok,
              n = sum(x[[v]][inside] == 1, na.rm = TRUE), answered = answered))
          }
        }
        for (item in ds$numbers) {
          answered <- sum(!is.na(x[[item]][inside]))
          if (answered < 2) next
          f <- as.formula(paste0("~", item))
          mean <- svymean(f, sub, na.rm = TRUE)
          numbers[[length(numbers) + 1]] <- cbind(tag, data.frame(
            by = by, domain = value, item = item, statistic = "mean", estimate = coef(mean)[[1]], se = SE(mean)[[1]],
            ci_low = NA, ci_high = NA, n = answered))
          q <- svyquantile(f, sub, c(0.25, 0.5, 0.75), na.rm = TRUE, ci = TRUE)[[1]]
          for (i in 1:3) {
            numbers[[length(numbers) + 1]] <- cbind(tag, data.frame(
              by = by, domain = value, item = item, statistic = c("p25", "median", "p75")[i], estimate = q[i, 1],
              se = q[i, 4], ci_low = q[i, 2], ci_high = q[i, 3], n = answered))
          }
        }
        for (pair in ds$tables) {
          f <- as.formula(paste0("~", pair[1], "+", pair[2]))
          test <- tryCatch(suppressWarnings(svychisq(f, sub, statistic = "F")), error = function(e) NULL)
          if (is.null(test) || !is.finite(test$statistic)) next
          ndf <- test$parameter[["ndf"]]
          tests[[length(tests) + 1]] <- cbind(tag, data.frame(
            by = by, domain = value, rows = pair[1], cols = pair[2], statistic = test$statistic[[1]], ndf = ndf,
            ddf = test$parameter[["ddf"]], p = test$p.value, ddf_degf = ndf * degf(sub),
            p_degf = pf(test$statistic[[1]], ndf, ndf * degf(sub), lower.tail = FALSE)))
        }
      }
    }
  }
}
write.csv(do.call(rbind, shares), file.path(out, "freq_r_shares.csv"), row.names = FALSE)
write.csv(do.call(rbind, numbers), file.path(out, "freq_r_numbers.csv"), row.names = FALSE)
write.csv(do.call(rbind, tests), file.path(out, "freq_r_chisq.csv"), row.names = FALSE)
cat(sprintf("%d share rows, %d number rows, %d tests\n", length(shares), length(numbers), length(tests)))
